"""The Helm chart: helm lint, helm template and kubeconform -strict on every rendered object, no cluster.

helm and kubeconform are built from the Go module proxy by deploy/tools.sh (pinned, cached in
.cache/go and .cache/tools); a missing Go fails these tests rather than skipping them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge import config, strimzi
from bridge.settings import ENV_REFERENCE
from scripts import chart_schema
from tests.support.helm import (
    CHART,
    HELM_DEFAULT_KUBERNETES_VERSION,
    HELM_VERSION,
    RELEASE,
    Chart,
    build_tools,
    kubernetes_schemas,
)

# A cold Helm build (about 4 minutes) happens inside the first test's fixture.
pytestmark = pytest.mark.timeout(1200)

FULL = CHART / "ci" / "full-values.yaml"
VALUES = {"default": (), "full": (FULL,)}
FULLNAME = f"{RELEASE}-webhook-kafka-bridge"
MANAGEMENT = f"{FULLNAME}-management"
DEFAULT_SECRET = "webhook-kafka-bridge-credentials"
DEFAULT_KINDS = {"ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"}
FULL_KINDS = DEFAULT_KINDS | {
    "HorizontalPodAutoscaler",
    "HTTPRoute",
    "Ingress",
    "PrometheusRule",
    "ServiceMonitor",
}
CONSUMERS = ("suppression", "analytics", "billing")
# Every provider takes it (Standard Webhooks wants whsec_<base64>).
SECRET = "whsec_Y2hhcnQtdGVzdC1zZWNyZXQ="


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    return Chart(build_tools(), kubernetes_schemas(tmp_path_factory.mktemp("kubernetes-schemas")))


@pytest.fixture(scope="module")
def rendered(chart: Chart) -> dict[str, list[dict[str, Any]]]:
    return {name: chart.render(*files) for name, files in VALUES.items()}


def _kinds(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for item in objects if item["kind"] == kind]


def _named(objects: list[dict[str, Any]], kind: str, name: str = FULLNAME) -> dict[str, Any]:
    found = [item for item in _kinds(objects, kind) if item["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _pod(objects: list[dict[str, Any]], name: str = FULLNAME) -> dict[str, Any]:
    return dict(_named(objects, "Deployment", name)["spec"]["template"]["spec"])


def _container(objects: list[dict[str, Any]], name: str = FULLNAME) -> dict[str, Any]:
    containers = _pod(objects, name)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _bridge_yaml(objects: list[dict[str, Any]]) -> str:
    return str(_named(objects, "ConfigMap")["data"]["bridge.yaml"])


def _checksum(objects: list[dict[str, Any]], name: str = FULLNAME) -> str:
    return str(_named(objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/config"])


def _selects(selector: dict[str, Any], item: dict[str, Any]) -> bool:
    labels = item["metadata"].get("labels", {})
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def _container_port(container: dict[str, Any], name: str) -> int:
    return int(next(port["containerPort"] for port in container["ports"] if port["name"] == name))


# --- lint, render, validate ---------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_passes(chart: Chart, values: str) -> None:
    result = chart.lint(*VALUES[values])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_helm_is_linked_as_helm_releases_it(chart: Chart, tmp_path: Path) -> None:
    """deploy/tools.sh passes Helm's Makefile's ldflags: the full version, and the Kubernetes version
    helm is built against as the default of `helm template` (without them: "v3.22" and v1.20)."""
    assert chart.helm("version", "--template", "{{ .Version }}").stdout == HELM_VERSION
    probe = tmp_path / "probe"
    (probe / "templates").mkdir(parents=True)
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n", encoding="utf-8")
    (probe / "templates" / "kube.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube}\n"
        "data: {version: {{ .Capabilities.KubeVersion.Version | quote }}}\n",
        encoding="utf-8",
    )
    result = chart.template(chart=probe, kube_version=None)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["data"]["version"] == HELM_DEFAULT_KUBERNETES_VERSION


@pytest.mark.parametrize("values", VALUES)
def test_helm_template_works_without_kube_version(chart: Chart, values: str) -> None:
    # The chart's kubeVersion is >=1.30; a helm defaulting to v1.20 refuses it.
    objects = chart.render(*VALUES[values], kube_version=None)
    assert {item["kind"] for item in objects} == (FULL_KINDS if values == "full" else DEFAULT_KINDS)


@pytest.mark.parametrize("values", VALUES)
def test_every_rendered_object_validates_strictly(chart: Chart, values: str) -> None:
    manifests = chart.template(*VALUES[values]).stdout
    count = sum(1 for document in yaml.safe_load_all(manifests) if document)
    result = chart.kubeconform(manifests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("Deployment", ("spec", "template", "spec"), "restartPolicyy"),
        ("ServiceMonitor", ("spec", "endpoints", 0), "scrapeIntervall"),
        ("HTTPRoute", ("spec", "rules", 0), "backendRefz"),
        ("PrometheusRule", ("spec", "groups", 0), "rulez"),
    ],
)
def test_kubeconform_rejects_an_unknown_field(
    chart: Chart, rendered: dict[str, list[dict[str, Any]]], kind: str, path: tuple[str | int, ...], field: str
) -> None:
    broken = copy.deepcopy(_named(rendered["full"], kind))
    target: Any = broken
    for step in path:
        target = target[step]
    target[field] = "x"
    result = chart.kubeconform(yaml.safe_dump(broken))
    assert result.returncode != 0
    assert field in result.stdout


def test_default_values_render_the_core_objects(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert {item["kind"] for item in rendered["default"]} == DEFAULT_KINDS
    assert len(_kinds(rendered["default"], "Deployment")) == 1


def test_full_values_render_every_optional_object(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert {item["kind"] for item in rendered["full"]} == FULL_KINDS
    deployments = {item["metadata"]["name"] for item in _kinds(rendered["full"], "Deployment")}
    assert deployments == {FULLNAME, *(f"{FULLNAME}-{name}" for name in CONSUMERS)}
    assert "replicas" not in _named(rendered["full"], "Deployment")["spec"]  # the HPA owns it


def test_a_wrong_type_fails_helm_template(chart: Chart) -> None:
    for key, value in {"replicaCount": "two", "config.server.port": "8000", "service.managementPort": 0}.items():
        result = chart.template(sets={key: value})
        assert result.returncode != 0, key
        assert "don't meet the specifications of the schema" in result.stderr
        assert "/" + key.replace(".", "/") in result.stderr


def test_an_unknown_bridge_config_key_fails_helm_template(chart: Chart) -> None:
    result = chart.template(sets={"config.server.prot": 8000})
    assert result.returncode != 0
    assert "prot" in result.stderr


def test_a_missing_management_port_fails_with_a_reason(chart: Chart) -> None:
    result = chart.template(sets={"config.server.management_port": None})
    assert result.returncode != 0
    assert "config.server.management_port must be set" in result.stderr


# --- what the objects say -----------------------------------------------------------------------


@pytest.mark.parametrize("service_type", ["ClusterIP", "NodePort", "LoadBalancer"])
@pytest.mark.parametrize("values", VALUES)
def test_the_public_service_has_only_the_public_port_whatever_its_type(
    chart: Chart, values: str, service_type: str
) -> None:
    objects = chart.render(*VALUES[values], sets={"service.type": service_type})
    server = yaml.safe_load(_bridge_yaml(objects))["server"]
    container = _container(objects)
    public = _named(objects, "Service")["spec"]
    assert public["type"] == service_type
    assert [(port["name"], port["targetPort"]) for port in public["ports"]] == [("http", "http")]
    management = _named(objects, "Service", MANAGEMENT)["spec"]
    assert management["type"] == "ClusterIP"
    assert [(port["name"], port["targetPort"]) for port in management["ports"]] == [("management", "management")]
    assert (
        management["selector"] == public["selector"] == _named(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert _container_port(container, "http") == server["port"]
    assert _container_port(container, "management") == server["management_port"]
    assert server["management_port"] != server["port"]


def test_the_management_service_name_never_clashes_with_the_public_one(chart: Chart) -> None:
    objects = chart.render(sets={"fullnameOverride": "x" * 63})
    names = [item["metadata"]["name"] for item in _kinds(objects, "Service")]
    assert names == ["x" * 63, "x" * 52 + "-management"]


@pytest.mark.parametrize("values", VALUES)
def test_probes_and_scraping_hit_the_management_port(rendered: dict[str, list[dict[str, Any]]], values: str) -> None:
    objects = rendered[values]
    container = _container(objects)
    probes = {name: container[f"{name}Probe"]["httpGet"] for name in ("startup", "liveness", "readiness")}
    assert probes == {
        "startup": {"path": "/healthz", "port": "management"},
        "liveness": {"path": "/healthz", "port": "management"},
        "readiness": {"path": "/readyz", "port": "management"},
    }
    annotations = _named(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(_container_port(container, "management"))


def test_servicemonitor_scrapes_metrics_on_the_management_service_only(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["full"]
    monitor = _named(objects, "ServiceMonitor")["spec"]
    assert monitor["endpoints"] == [
        {"port": "management", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    selected = [item["metadata"]["name"] for item in _kinds(objects, "Service") if _selects(monitor["selector"], item)]
    assert selected == [MANAGEMENT]
    ports = [port["name"] for port in _named(objects, "Service", MANAGEMENT)["spec"]["ports"]]
    assert ports == ["management"]
    # job = the Service's app.kubernetes.io/name, which the alerts' up{job=~...} selects.
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    job = _named(objects, "Service", MANAGEMENT)["metadata"]["labels"]["app.kubernetes.io/name"]
    alerts = (CHART / "files" / "alerts.yaml").read_text(encoding="utf-8")
    pattern = re.search(r'up\{job=~"([^"]+)"\}', alerts)
    assert pattern
    assert re.fullmatch(pattern.group(1), job)


@pytest.mark.parametrize("values", VALUES)
def test_ingress_routes_only_the_webhooks_prefix_to_the_public_port(chart: Chart, values: str) -> None:
    objects = chart.render(*VALUES[values], sets={"ingress.enabled": True, "ingress.hosts": ["hooks.example"]})
    rules = _named(objects, "Ingress")["spec"]["rules"]
    paths = [path for rule in rules for path in rule["http"]["paths"]]
    assert paths == [
        {
            "path": "/webhooks/",
            "pathType": "Prefix",
            "backend": {"service": {"name": FULLNAME, "port": {"name": "http"}}},
        }
    ]
    assert "defaultBackend" not in _named(objects, "Ingress")["spec"]


def test_httproute_routes_only_the_webhooks_prefix_to_the_public_port(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    route = _named(rendered["full"], "HTTPRoute")["spec"]
    public = next(port for port in _named(rendered["full"], "Service")["spec"]["ports"] if port["name"] == "http")
    assert route["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/webhooks/"}}],
            "backendRefs": [{"name": FULLNAME, "port": public["port"]}],
        }
    ]
    assert route["parentRefs"] == [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ({}, 10 + 20 + 10),
        ({"config.server.shutdown_timeout_seconds": 45}, 10 + 45 + 10),
        ({"preStopSleepSeconds": 3, "terminationGraceMarginSeconds": 7}, 3 + 20 + 7),
        ({"config.server.shutdown_timeout_seconds": 12.5}, 10 + 13 + 10),
    ],
)
def test_grace_period_is_derived_from_the_shutdown_budget(chart: Chart, sets: dict[str, Any], expected: int) -> None:
    objects = chart.render(sets=sets)
    pod = _pod(objects)
    pre_stop = _container(objects)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] == expected
    assert pre_stop == int(sets.get("preStopSleepSeconds", 10))


def test_full_values_grace_period(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert _pod(rendered["full"])["terminationGracePeriodSeconds"] == 15 + 25 + 5


CONSUMERS_ON = {f"consumers.{name}.enabled": True for name in CONSUMERS}
DEPLOYMENTS = (FULLNAME, *(f"{FULLNAME}-{name}" for name in CONSUMERS))
SOURCES = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["config"]["sources"]
A_SOURCE = {"name": "resend", "provider": "standard-webhooks", "secrets": ["${file:/run/secrets/bridge/RESEND}"]}


@pytest.mark.parametrize(
    "change",
    [
        {"config.topics.prefix": "hooks"},
        {"config.server.port": 8001},
        {"config.sources": [*SOURCES, A_SOURCE]},
        {"config.sources": [{**SOURCES[0], "secrets": ["${file:/run/secrets/bridge/OTHER}"]}]},
    ],
    ids=["topics.prefix", "server.port", "a source added", "a source changed"],
)
def test_checksum_changes_with_the_config_on_every_deployment(chart: Chart, change: dict[str, Any]) -> None:
    base = chart.render(sets=CONSUMERS_ON)
    changed = chart.render(sets={**CONSUMERS_ON, **change})
    assert _bridge_yaml(changed) != _bridge_yaml(base)
    for name in DEPLOYMENTS:
        assert re.fullmatch(r"[0-9a-f]{64}", _checksum(base, name))
        assert _checksum(changed, name) != _checksum(base, name), name
        assert _checksum(changed, name) == _checksum(changed)  # one config, one checksum


def test_checksum_stays_when_only_other_values_change(chart: Chart) -> None:
    base = chart.render(sets=CONSUMERS_ON)
    other = chart.render(sets={**CONSUMERS_ON, "replicaCount": 5, "image.tag": "0.2.0", "service.port": 8080})
    for name in DEPLOYMENTS:
        assert _checksum(other, name) == _checksum(base, name), name


@pytest.mark.parametrize("values", VALUES)
def test_credentials_come_from_the_existing_secret_only(rendered: dict[str, list[dict[str, Any]]], values: str) -> None:
    objects = rendered[values]
    assert not _kinds(objects, "Secret")
    chosen = yaml.safe_load(FULL.read_text(encoding="utf-8")) if values == "full" else {}
    secret = chosen.get("existingSecret", DEFAULT_SECRET)
    for deployment in _kinds(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        volumes = [volume["secret"]["secretName"] for volume in pod["volumes"] if volume["name"] == "secret"]
        assert volumes == [secret]
        container = pod["containers"][0]
        from_env = [source["secretRef"]["name"] for source in container.get("envFrom", [])]
        assert from_env == ([secret] if chosen.get("secretEnv") else [])
        references = [
            item["valueFrom"]["secretKeyRef"]["name"] for item in container.get("env", []) if "valueFrom" in item
        ]
        assert set(references) <= {secret}


@pytest.mark.parametrize("values", VALUES)
def test_existing_secret_is_not_the_kafka_users_secret(rendered: dict[str, list[dict[str, Any]]], values: str) -> None:
    """Strimzi's User Operator writes a KafkaUser's password into a Secret named after the user;
    `bridge topics render --strimzi` names the user kafka.sasl.username, else DEFAULT_USER."""
    chosen = yaml.safe_load(FULL.read_text(encoding="utf-8")) if values == "full" else {}
    secret = chosen.get("existingSecret", DEFAULT_SECRET)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert defaults["existingSecret"] == DEFAULT_SECRET
    kafka = yaml.safe_load(_bridge_yaml(rendered[values]))["kafka"]
    user = (kafka.get("sasl") or {}).get("username") or strimzi.DEFAULT_USER
    assert secret != user


def test_notes_port_forward_to_the_management_service_in_the_background(chart: Chart, tmp_path: Path) -> None:
    notes = chart.notes(tmp_path)
    lines = [line.strip() for line in notes.splitlines()]
    forward = next(index for index, line in enumerate(lines) if line.startswith("kubectl") and "port-forward" in line)
    # `port-forward … && curl …` would wait for port-forward, which never exits.
    assert lines[forward : forward + 2] == [
        f"kubectl -n webhooks port-forward svc/{MANAGEMENT} 9090 &",
        "curl localhost:9090/readyz",
    ]
    assert f"create secret generic {DEFAULT_SECRET} " in notes


def test_the_secret_is_mounted_where_the_config_reads_it(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["default"]
    mounts = {mount["name"]: mount["mountPath"] for mount in _container(objects)["volumeMounts"]}
    files = re.findall(r"\$\{file:([^}]+)\}", _bridge_yaml(objects))
    assert files
    assert all(Path(path).parent == Path(mounts["secret"]) for path in files)


def test_values_files_reference_secrets_and_never_hold_them() -> None:
    for values in (CHART / "values.yaml", FULL):
        tree = yaml.safe_load(values.read_text(encoding="utf-8"))
        for key in _secret_keys(tree):
            assert key[1].startswith("${"), f"{values.name}: {key[0]} holds a value, not a reference"


def _secret_keys(tree: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{where}.{key}" if where else str(key)
            if key in {"password", "secrets", "token", "bearer_token"} and isinstance(value, str):
                yield path, value
            if key == "secrets" and isinstance(value, list):
                yield from ((f"{path}[]", item) for item in value)
            else:
                yield from _secret_keys(value, path)
    elif isinstance(tree, list):
        for item in tree:
            yield from _secret_keys(item, where)


def test_consumers_render_only_when_enabled(chart: Chart, rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert {item["metadata"]["name"] for item in _kinds(rendered["default"], "Deployment")} == {FULLNAME}
    objects = chart.render(sets={"consumers.billing.enabled": True, "consumers.billing.storeSecretKey": "BILLING"})
    assert {item["metadata"]["name"] for item in _kinds(objects, "Deployment")} == {FULLNAME, f"{FULLNAME}-billing"}
    billing = _container(objects, f"{FULLNAME}-billing")
    assert billing["args"] == [
        "consumer", "run", "billing", "--config", "/etc/bridge/bridge.yaml", "--store", "$(BRIDGE_CONSUMER_STORE)",
    ]  # fmt: skip
    store = next(item for item in billing["env"] if item["name"] == "BRIDGE_CONSUMER_STORE")
    assert store["valueFrom"]["secretKeyRef"] == {"name": DEFAULT_SECRET, "key": "BILLING"}
    assert "ports" not in billing


def test_suppression_serves_its_lookup_api(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["full"]
    container = _container(objects, f"{FULLNAME}-suppression")
    assert container["args"][:3] == ["consumer", "run", "suppression"]
    assert container["args"][-4:] == ["--http-host", "0.0.0.0", "--http-port", "8090"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = _named(objects, "Service", f"{FULLNAME}-suppression")["spec"]
    assert service["selector"]["app.kubernetes.io/component"] == "consumer-suppression"
    assert [(port["port"], port["targetPort"]) for port in service["ports"]] == [(8090, "http")]


@pytest.mark.parametrize("values", VALUES)
def test_network_policy_guards_both_ports(rendered: dict[str, list[dict[str, Any]]], values: str) -> None:
    objects = rendered[values]
    chosen = yaml.safe_load(FULL.read_text(encoding="utf-8")) if values == "full" else {}
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["networkPolicy"]
    expected = {**defaults, **chosen.get("networkPolicy", {})}
    policy = _named(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == _named(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ingress = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    assert ingress == {"http": expected["publicFrom"], "management": expected["managementFrom"]}
    egress_ports = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
    assert {53, *expected["kafka"]["ports"], *expected["registry"]["ports"]} <= egress_ports


def test_pod_is_locked_down(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for deployment in _kinds(rendered["full"], "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert _named(rendered["default"], "ServiceAccount")["automountServiceAccountToken"] is False
    spread = _pod(rendered["default"])["topologySpreadConstraints"]
    assert [item["topologyKey"] for item in spread] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]


def test_image_by_digest_wins_over_the_tag(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert _container(rendered["default"])["image"] == "ghcr.io/example/webhook-kafka-bridge:0.1.0"
    assert _container(rendered["full"])["image"].endswith("@sha256:" + "0" * 64)


def test_the_alerts_file_is_a_valid_prometheus_rule_on_its_own(chart: Chart) -> None:
    # For clusters without the chart: `kubectl apply -f files/alerts.yaml`.
    result = chart.kubeconform((CHART / "files" / "alerts.yaml").read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 1" in result.stdout


def test_prometheus_rule_and_dashboard_carry_the_files(rendered: dict[str, list[dict[str, Any]]]) -> None:
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text(encoding="utf-8"))
    assert _named(rendered["full"], "PrometheusRule")["spec"]["groups"] == alerts["spec"]["groups"]
    dashboard = _named(rendered["full"], "ConfigMap", f"{FULLNAME}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    content = (CHART / "files" / "dashboard.json").read_text(encoding="utf-8")
    assert dashboard["data"]["webhook-kafka-bridge.json"] == content


# --- the rendered bridge configuration ----------------------------------------------------------


@pytest.mark.parametrize("values", VALUES)
def test_rendered_config_is_a_valid_bridge_configuration(
    rendered: dict[str, list[dict[str, Any]]], values: str, tmp_path: Path
) -> None:
    """Through the bridge's own loader, ${file:} paths moved into tmp_path and ${VAR}s set."""
    text = _bridge_yaml(rendered[values])
    for path in set(re.findall(r"\$\{file:([^}]+)\}", text)):
        local = tmp_path / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(SECRET + "\n", encoding="utf-8")
        text = text.replace(f"${{file:{path}}}", f"${{file:{local}}}")
    environ = {name: SECRET for name, _ in ENV_REFERENCE.findall(text)}
    settings = config.parse(text, environ=environ, origin=f"{values} values")
    assert settings.server.host == "0.0.0.0"
    assert (
        settings.server.management_port == yaml.safe_load(_bridge_yaml(rendered[values]))["server"]["management_port"]
    )
    assert settings.sources


# --- the schema and the README ------------------------------------------------------------------


def test_values_schema_is_what_the_generator_writes_now() -> None:
    committed = (CHART / "values.schema.json").read_text(encoding="utf-8")
    assert committed == chart_schema.render(), "values.schema.json is stale: run make chart-schema"


def test_values_schema_nests_the_bridge_schema_with_resolvable_references() -> None:
    schema = chart_schema.build()
    references = set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', chart_schema.render()))
    assert references
    assert references <= set(schema["$defs"])
    assert set(schema["properties"]) == set(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))


# Values whose inside is someone else's format: the bridge's configuration, Kubernetes' resources.
OPAQUE = {"config", "resources"}


def _keys(tree: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys of the leaves of values.yaml (an empty map, a list or an OPAQUE map is a leaf)."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in OPAQUE:
            yield from _keys(value, f"{path}.")
        else:
            yield path


def test_every_value_is_documented_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    missing = [key for key in _keys(values) if key not in documented]
    assert not missing, f"not in the chart README's table: {missing}"
