"""Writes the Helm chart's values.schema.json: the chart's own values, and `config` as `bridge config-schema`.

    python -m scripts.chart_schema           # rewrite the file (make chart-schema)
    python -m scripts.chart_schema --check   # exit 1 if the committed file is stale

The bridge's schema keeps its definitions under `$defs` with `#/$defs/…` references. Nested under
`properties.config` those references would point at the chart schema's root, so its `$defs` are
hoisted there, where the references resolve unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bridge import config

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "webhook-kafka-bridge"
SCHEMA_FILE = CHART / "values.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}  # a Kubernetes type; kubeconform checks the rendered object
OBJECTS: Schema = {"type": "array", "items": OBJECT}
STRINGS: Schema = {"type": "array", "items": STRING}
LABELS: Schema = {"type": "object", "additionalProperties": STRING}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
PORTS: Schema = {"type": "array", "items": PORT, "minItems": 1}
SECONDS: Schema = {"type": "integer", "minimum": 0}
DURATION: Schema = {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _integer(minimum: int, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _probe() -> Schema:
    return _object({"periodSeconds": _integer(1), "timeoutSeconds": _integer(1), "failureThreshold": _integer(1)})


def _consumer(http: bool) -> Schema:
    properties: dict[str, Schema] = {
        "enabled": BOOLEAN,
        "replicas": _integer(0),
        "storeSecretKey": STRING,
        "resources": OBJECT,
    }
    if http:
        properties["httpPort"] = PORT
    return _object(properties)


def _destination() -> Schema:
    return _object({"to": OBJECTS, "ports": PORTS})


def chart_values() -> dict[str, Schema]:
    """The chart's own values (everything but `config`), as values.yaml and README.md describe them."""
    return {
        "nameOverride": STRING,
        "fullnameOverride": STRING,
        "image": _object(
            {
                "repository": {"type": "string", "minLength": 1},
                "tag": STRING,
                "digest": {"type": "string", "pattern": "^(sha256:[0-9a-f]{64})?$"},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            ["repository"],
        ),
        "imagePullSecrets": OBJECTS,
        "replicaCount": _integer(0),
        "revisionHistoryLimit": _integer(0),
        "existingSecret": STRING,
        "secretEnv": BOOLEAN,
        "secretMountPath": {"type": "string", "pattern": "^(/.*)?$"},
        "extraEnv": OBJECTS,
        "extraVolumes": OBJECTS,
        "extraVolumeMounts": OBJECTS,
        "serviceAccount": _object({"create": BOOLEAN, "name": STRING, "annotations": LABELS}),
        "podAnnotations": LABELS,
        "podLabels": LABELS,
        "scrapeAnnotations": BOOLEAN,
        "resources": OBJECT,
        "nodeSelector": LABELS,
        "tolerations": OBJECTS,
        "affinity": OBJECT,
        "priorityClassName": STRING,
        "topologySpread": _object(
            {
                "enabled": BOOLEAN,
                "maxSkew": _integer(1),
                "whenUnsatisfiable": {"enum": ["DoNotSchedule", "ScheduleAnyway"]},
                "topologyKeys": STRINGS,
            }
        ),
        "preStopSleepSeconds": SECONDS,
        "terminationGraceMarginSeconds": SECONDS,
        "probes": _object({"liveness": _probe(), "readiness": _probe(), "startup": _probe()}),
        "service": _object(
            {
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": PORT,
                "managementPort": PORT,
                "annotations": LABELS,
            }
        ),
        "ingress": _object(
            {"enabled": BOOLEAN, "className": STRING, "annotations": LABELS, "hosts": STRINGS, "tls": OBJECTS}
        ),
        "httpRoute": _object({"enabled": BOOLEAN, "annotations": LABELS, "parentRefs": OBJECTS, "hostnames": STRINGS}),
        "networkPolicy": _object(
            {
                "enabled": BOOLEAN,
                "publicFrom": OBJECTS,
                "managementFrom": OBJECTS,
                "restrictEgress": BOOLEAN,
                "dns": _object({"to": OBJECTS}),
                "kafka": _destination(),
                "registry": _destination(),
                "extraEgress": OBJECTS,
            }
        ),
        "autoscaling": _object(
            {
                "enabled": BOOLEAN,
                "minReplicas": _integer(1),
                "maxReplicas": _integer(1),
                "targetCPUUtilizationPercentage": _integer(0),
                "targetMemoryUtilizationPercentage": _integer(0),
                "behavior": OBJECT,
            }
        ),
        "pdb": _object(
            {
                "enabled": BOOLEAN,
                "minAvailable": {"type": ["integer", "string"]},
                "maxUnavailable": {"type": ["integer", "string"]},
            }
        ),
        "serviceMonitor": _object(
            {"enabled": BOOLEAN, "labels": LABELS, "interval": DURATION, "scrapeTimeout": DURATION}
        ),
        "prometheusRule": _object({"enabled": BOOLEAN, "labels": LABELS}),
        "dashboard": _object({"enabled": BOOLEAN, "labels": LABELS, "annotations": LABELS}),
        "consumers": _object(
            {
                "suppression": _consumer(http=True),
                "analytics": _consumer(http=False),
                "billing": _consumer(http=False),
                "terminationGracePeriodSeconds": SECONDS,
            }
        ),
    }


def build() -> Schema:
    bridge = json.loads(config.json_schema())
    definitions = bridge.pop("$defs", {})
    for key in ("$schema", "title"):
        bridge.pop(key, None)
    bridge["description"] = "The bridge's configuration file (bridge config-schema), rendered into the ConfigMap."
    properties = chart_values()
    properties["config"] = bridge
    return {
        "$schema": DRAFT,
        "title": "webhook-kafka-bridge Helm chart values",
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "config"],
        "properties": properties,
        "$defs": definitions,
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.chart_schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    arguments = parser.parse_args(argv)
    text = render()
    if arguments.check:
        current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
        if current != text:
            print(f"{SCHEMA_FILE} is stale: run make chart-schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
