"""Offline checks of the deployment files: Kubernetes schemas, the embedded bridge.yaml, compose.

Nothing here needs a cluster or Docker: the manifests are validated against the Kubernetes 1.33
JSON schemas bundled in the `kubernetes-validate` package, strictly (unknown fields are errors).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bridge import config
from bridge.app import create_app
from bridge.errors import ConfigError
from bridge.settings import CONFIG_ENV, ENV_REFERENCE
from tests.support.fakes import FakePublisher, MockRegistry

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "local" / "compose.yaml"
KUBERNETES_VERSION = "1.33"
SECRET_ENV = {"LETTERMINT_WEBHOOK_SECRET": "whsec_deploy-test"}
EXPECTED_KINDS = {"ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}#{index}", document)
        for path in sorted(K8S.glob("*.yaml"))
        for index, document in enumerate(_documents(path))
    ]


def _one(kind: str) -> dict[str, Any]:
    found = [document for _, document in _manifests() if document["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def _container() -> dict[str, Any]:
    containers = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _bridge_yaml() -> str:
    return str(_one("ConfigMap")["data"]["bridge.yaml"])


def _strings(tree: Any) -> str:
    """Every string in a loaded YAML tree, one a line (comments, unlike in the raw text, are gone)."""
    if isinstance(tree, dict):
        return "\n".join(_strings(value) for value in tree.values())
    if isinstance(tree, list):
        return "\n".join(_strings(value) for value in tree)
    return tree if isinstance(tree, str) else ""


def _configured() -> config.Settings:
    return config.parse(_bridge_yaml(), environ=dict(SECRET_ENV), origin="deploy/k8s/configmap.yaml")


# --- Kubernetes schemas -------------------------------------------------------------------------


def test_the_manifests_are_all_there() -> None:
    assert {document["kind"] for _, document in _manifests()} == EXPECTED_KINDS


@pytest.mark.parametrize(("name", "manifest"), _manifests(), ids=[name for name, _ in _manifests()])
def test_manifest_validates_against_the_kubernetes_schema(name: str, manifest: dict[str, Any]) -> None:
    try:
        validated = kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(top level)"
        pytest.fail(f"{name}: {where}: {error.message}")
    assert validated == KUBERNETES_VERSION


# --- the bridge.yaml in the ConfigMap -----------------------------------------------------------


def test_configmap_bridge_yaml_is_a_valid_configuration() -> None:
    settings = _configured()
    assert settings.server.host == "0.0.0.0"
    assert settings.topics.prefix == "webhooks"
    assert settings.topics.create is False
    assert settings.schema_registry.auto_register is False
    assert settings.schema_registry.url.endswith("/apis/ccompat/v7")
    assert [source.provider for source in settings.sources] == ["lettermint"]
    assert settings.sources[0].secret_values() == [SECRET_ENV["LETTERMINT_WEBHOOK_SECRET"]]


def test_configmap_bridge_yaml_takes_its_secret_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="LETTERMINT_WEBHOOK_SECRET is not set"):
        config.parse(_bridge_yaml(), environ={})


def test_every_variable_the_configuration_needs_comes_from_the_secret() -> None:
    needed = {name for name, default in ENV_REFERENCE.findall(_strings(yaml.safe_load(_bridge_yaml()))) if not default}
    from_secret = {
        item["name"]
        for item in _container().get("env", [])
        if item.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == _one("Secret")["metadata"]["name"]
    }
    assert needed <= from_secret
    assert needed <= set(_one("Secret")["stringData"])


# --- the Deployment, Service and ConfigMap agree with each other and with the bridge ------------


def test_bridge_config_points_at_the_mounted_configmap() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()
    env = {item["name"]: item.get("value") for item in container["env"]}
    volume = next(volume for volume in pod["volumes"] if "configMap" in volume)
    assert volume["configMap"]["name"] == _one("ConfigMap")["metadata"]["name"]
    mount = next(mount for mount in container["volumeMounts"] if mount["name"] == volume["name"])
    item = next(item for item in volume["configMap"]["items"] if item["key"] == "bridge.yaml")
    assert env[CONFIG_ENV] == f"{mount['mountPath']}/{item['path']}"


def test_ports_line_up() -> None:
    port = _configured().server.port
    container = _container()
    service = _one("Service")["spec"]
    annotations = _one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert [p["containerPort"] for p in container["ports"] if p["name"] == "http"] == [port]
    assert service["type"] == "ClusterIP"
    # The Service exposes the public port only; probes and Prometheus use the management port.
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(80, "http")]
    management = _configured().server.management_port
    assert [p["containerPort"] for p in container["ports"] if p["name"] == "management"] == [management]
    assert annotations["prometheus.io/port"] == str(management)
    assert annotations["prometheus.io/scrape"] == "true"


def test_probes_and_scraping_hit_real_routes(settings: config.Settings, registry: MockRegistry) -> None:
    configured = settings.model_copy(update={"server": _configured().server})
    app = create_app(configured, publisher=FakePublisher(), client=registry)
    assert app.management is not None
    routes = {getattr(route, "path", None) for route in getattr(app.management, "routes", [])}
    container = _container()
    annotations = _one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "management"}
    assert {"/healthz", "/readyz", annotations["prometheus.io/path"]} <= routes


def test_grace_period_outlasts_prestop_and_shutdown() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    pre_stop = _container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    shutdown = _configured().server.shutdown_timeout_seconds
    # After SIGTERM uvicorn drains for up to shutdown_timeout_seconds, then the producer flushes
    # for up to as long again.
    assert pod["terminationGracePeriodSeconds"] > pre_stop + 2 * shutdown


def test_pod_is_locked_down() -> None:
    deployment = _one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container()
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert _pinned(container["image"])


def test_disruption_budget_keeps_one_replica() -> None:
    budget = _one("PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"] == _one("Deployment")["spec"]["selector"]["matchLabels"]


# --- compose.yaml -------------------------------------------------------------------------------


def _pinned(image: str) -> bool:
    """A digest, or an explicit tag other than `latest`."""
    if "@sha256:" in image:
        return True
    match = re.fullmatch(r"(?P<name>[^:]+(?::\d+/[^:]+)?):(?P<tag>[\w][\w.-]*)", image)
    return match is not None and match["tag"] != "latest"


@pytest.mark.parametrize("image", ["kafka", "apache/kafka:latest", "localhost:5000/kafka"])
def test_unpinned_images_are_recognised(image: str) -> None:
    assert not _pinned(image)


def test_compose_pins_its_images_and_binds_loopback() -> None:
    documents = _documents(COMPOSE)
    assert len(documents) == 1
    services = documents[0]["services"]
    images = {name: service["image"] for name, service in services.items()}
    assert images == {"kafka": "apache/kafka:4.3.1", "registry": "apicurio/apicurio-registry:3.3.3"}
    assert all(_pinned(image) for image in images.values())
    ports = {name: service["ports"] for name, service in services.items()}
    assert ports == {"kafka": ["127.0.0.1:9092:9092"], "registry": ["127.0.0.1:8081:8080"]}
    assert services["registry"]["environment"]["APICURIO_RULES_GLOBAL_COMPATIBILITY"] == "BACKWARD"
