"""The Helm chart under test: pinned helm and kubeconform (deploy/tools.sh), rendering, and validation.

kubeconform validates against the Kubernetes JSON schemas that the kubernetes-validate package
ships (offline, strict). Their `$ref`s point at `/api/_definitions.json`; they are copied once into
a folder with those references rewritten to that folder's own `_definitions.json`. The custom
resources (ServiceMonitor, PrometheusRule, HTTPRoute) have no schema there: tests/fixtures/crd-schemas
holds pinned, hand-written subsets of theirs, so no kind is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "webhook-kafka-bridge"
TOOLS = ROOT / "deploy" / "tools.sh"
CRD_SCHEMAS = ROOT / "tests" / "fixtures" / "crd-schemas"
# The schemas' version, and the one helm renders for where the objects are validated against them.
KUBERNETES_VERSION = "1.33.0"
# What helm v3.22.0 renders for without --kube-version (deploy/tools.sh links it in, as Helm's Makefile does).
HELM_DEFAULT_KUBERNETES_VERSION = "v1.37.0"
HELM_VERSION = "v3.22.0"
RELEASE = "bridge"
# A cold build of Helm takes about 4 minutes on 2 cores; cached, the script takes well under a second.
BUILD_TIMEOUT_SECONDS = 900


def build_tools() -> Path:
    """The folder holding helm and kubeconform, built (or found built) by deploy/tools.sh."""
    result = subprocess.run(
        ["bash", str(TOOLS)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"deploy/tools.sh failed ({result.returncode}):\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def kubernetes_schemas(folder: Path, version: str = KUBERNETES_VERSION) -> Path:
    """kubernetes-validate's strict schemas for `version`, with references kubeconform can resolve."""
    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    definitions = f'"file://{folder}/_definitions.json'
    folder.mkdir(parents=True, exist_ok=True)
    for schema in source.glob("*.json"):
        text = schema.read_text(encoding="utf-8").replace('"/api/_definitions.json', definitions)
        (folder / schema.name).write_text(text, encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Chart:
    bin: Path
    schemas: Path

    def helm(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / "helm"), *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)

    def lint(self, *values: Path) -> subprocess.CompletedProcess[str]:
        return self.helm("lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION, *_values(values))

    def template(
        self,
        *values: Path,
        sets: dict[str, Any] | None = None,
        kube_version: str | None = KUBERNETES_VERSION,
        chart: Path = CHART,
    ) -> subprocess.CompletedProcess[str]:
        """`sets` go in as --set-json, so a value keeps its JSON type (a float, null, a string "8000").
        kube_version None: helm's own default."""
        options = [item for key, value in (sets or {}).items() for item in ("--set-json", f"{key}={json.dumps(value)}")]
        if kube_version is not None:
            options += ["--kube-version", kube_version]
        return self.helm("template", RELEASE, str(chart), "--namespace", "webhooks", *_values(values), *options)

    def notes(self, folder: Path, sets: dict[str, Any] | None = None) -> str:
        """templates/NOTES.txt as `helm install` prints it: `helm template` leaves NOTES.txt out, and
        `helm install --dry-run` needs a cluster, so a copy of the chart renders it into a ConfigMap."""
        copy = folder / CHART.name
        shutil.copytree(CHART, copy)
        notes = (copy / "templates" / "NOTES.txt").read_text(encoding="utf-8")
        (copy / "templates" / "_notes.tpl").write_text(
            '{{- define "test.notes" -}}\n' + notes + "\n{{- end -}}\n", encoding="utf-8"
        )
        (copy / "templates" / "notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
            'data: {notes: {{ include "test.notes" . | toJson }}}\n',
            encoding="utf-8",
        )
        result = self.template(sets=sets, chart=copy)
        if result.returncode != 0:
            raise AssertionError(f"helm template failed:\n{result.stderr}")
        found = [item for item in yaml.safe_load_all(result.stdout) if item and item["metadata"]["name"] == "notes"]
        return str(found[0]["data"]["notes"])

    def render(
        self, *values: Path, sets: dict[str, Any] | None = None, kube_version: str | None = KUBERNETES_VERSION
    ) -> list[dict[str, Any]]:
        result = self.template(*values, sets=sets, kube_version=kube_version)
        if result.returncode != 0:
            raise AssertionError(f"helm template failed:\n{result.stderr}")
        return [document for document in yaml.safe_load_all(result.stdout) if document]

    def kubeconform(self, manifests: str) -> subprocess.CompletedProcess[str]:
        locations = [self.schemas, CRD_SCHEMAS]
        command = [str(self.bin / "kubeconform"), "-strict", "-summary", "-output", "text"]
        for location in locations:
            command += ["-schema-location", f"{location}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json"]
        return subprocess.run(command, input=manifests, capture_output=True, text=True, timeout=120, check=False)


def _values(files: tuple[Path, ...]) -> list[str]:
    return [item for path in files for item in ("--values", str(path))]
