"""`bridge config-schema`: a JSON Schema of the whole configuration that editors and charts can validate with."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bridge import config
from bridge.settings import ENV_REFERENCE

ROOT = Path(__file__).resolve().parents[2]
# Every configuration in the repository: the local example and the one the Kubernetes ConfigMap embeds.
README_CONFIG = re.search(r"## Configuration.*?```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
EXAMPLES = {
    "README.md (Configuration)": README_CONFIG.group(1) if README_CONFIG else "",
    "deploy/local/bridge.yaml": (ROOT / "deploy" / "local" / "bridge.yaml").read_text(encoding="utf-8"),
    "deploy/k8s/configmap.yaml": yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())["data"][
        "bridge.yaml"
    ],
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "config-schema"], capture_output=True, text=True, timeout=60, check=True
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(parsed)
    return parsed


def placeholders(text: str) -> dict[str, str]:
    """A value for every `${VAR}` without a default, as a deployment's environment would give."""
    return {name: f"value-of-{name}" for name, default in ENV_REFERENCE.findall(text) if not default}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_schema_accepts_every_example_config(schema: dict[str, Any], name: str) -> None:
    tree = config.expand(EXAMPLES[name], placeholders(EXAMPLES[name]))
    jsonschema.validate(tree, schema)
    config.parse(EXAMPLES[name], placeholders(EXAMPLES[name]))  # and the bridge itself takes it


def every_provider_source() -> dict[str, dict[str, Any]]:
    """One valid source per provider, from the YAML the integration tests configure them with."""
    return {
        "lettermint": {"provider": "lettermint", "secrets": ["whsec_x"]},
        "lettr": {"provider": "lettr", "options": {"basic_auth": [{"username": "u", "password": "p"}]}},
        "standard-webhooks": {"provider": "standard-webhooks", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]},
        "sendapi": {"provider": "sendapi", "secrets": ["whsec_x"]},
        "sendgrid": {"provider": "sendgrid", "options": {"public_keys": ["key"]}},
        "mailgun": {"provider": "mailgun", "secrets": ["key"], "options": {"replay_cache_size": 10}},
        "postmark": {"provider": "postmark", "options": {"basic_auth": [{"username": "u", "password": "p"}]}},
        "ses": {"provider": "ses", "options": {"topic_arns": ["arn:aws:sns:us-east-1:123456789012:t"]}},
    }


def with_source(source: dict[str, Any]) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap_servers": "k:9092"},
        "schema_registry": {"url": "http://r"},
        "sources": [{"name": "s", **source}],
    }


@pytest.mark.parametrize(("provider", "source"), sorted(every_provider_source().items()))
def test_each_provider_has_its_own_options_in_the_schema(
    schema: dict[str, Any], provider: str, source: dict[str, Any]
) -> None:
    jsonschema.validate(with_source(source), schema)
    misspelt = {**source, "options": {**source.get("options", {}), "colour_of_the_key": "blue"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_source(misspelt), schema)


def test_a_misspelt_provider_option_is_rejected(schema: dict[str, Any]) -> None:
    typo = {"provider": "ses", "options": {"topic_arn": ["arn:aws:sns:us-east-1:123456789012:t"]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_source(typo), schema)
    with pytest.raises(config.ConfigError, match=r"sources\.0\.options\.topic_arn: unknown key"):
        config.parse(yaml.safe_dump(with_source(typo)), environ={})


def test_an_unknown_provider_is_rejected(schema: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(with_source({"provider": "sendgridd", "secrets": ["x"]}), schema)


def test_every_registered_provider_is_in_the_schema(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert all(f'"const": "{name}"' in text for name in every_provider_source())
