"""The Helm chart, rendered by the real `helm` binary: lint, template with default and full values, object checks."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from operator_harness import ROOT, tool

CHART = ROOT / "charts" / "durable-workflows"
FULL = CHART / "ci" / "full-values.yaml"
CRD_NAMES = {
    "durableworkflows.durable.dev",
    "durableexecutions.durable.dev",
    "durablesignals.durable.dev",
    "durableschedules.durable.dev",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=False, timeout=60)


def render(*args: str) -> dict[tuple[str, str], dict[str, Any]]:
    proc = helm("template", "rel", str(CHART), "--namespace", "durable", *args)
    assert proc.returncode == 0, proc.stderr
    objs: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if doc:
            # Objects the chart places in other namespaces (peering per watched namespace) as "ns/name".
            ns = doc["metadata"].get("namespace")
            key = (doc["kind"], f"{ns}/{doc['metadata']['name']}" if ns else doc["metadata"]["name"])
            assert key not in objs, f"duplicate {key}"
            objs[key] = doc
    return objs


@pytest.fixture(scope="module")
def default() -> dict[tuple[str, str], dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def full() -> dict[tuple[str, str], dict[str, Any]]:
    return render("-f", str(FULL))


def test_lint_default_and_full_values() -> None:
    for extra in ([], ["-f", str(FULL)]):
        proc = helm("lint", "--strict", str(CHART), *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "0 chart(s) failed" in proc.stdout


def test_default_objects(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert set(default) == {
        ("Secret", "rel-durable-workflows-redis-url"),
        ("ServiceAccount", "rel-durable-workflows-operator"),
        ("ClusterRole", "rel-durable-workflows-operator"),
        ("ClusterRoleBinding", "rel-durable-workflows-operator"),
        ("ClusterKopfPeering", "rel-durable-workflows"),
        ("Deployment", "rel-durable-workflows-operator"),
        ("Service", "rel-durable-workflows-operator-metrics"),
        ("Deployment", "rel-durable-workflows-worker"),
        ("StatefulSet", "rel-durable-workflows-redis"),
        ("Service", "rel-durable-workflows-redis"),
        *(("CustomResourceDefinition", name) for name in CRD_NAMES),
    }
    url = default["Secret", "rel-durable-workflows-redis-url"]["stringData"]["redis-url"]
    assert url == "redis://rel-durable-workflows-redis:6379/0"


def _labels_ok(obj: dict[str, Any]) -> None:
    labels = obj["metadata"]["labels"]
    for key in (
        "helm.sh/chart",
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/managed-by",
    ):
        assert key in labels, (obj["kind"], obj["metadata"]["name"], key)


def _pods(objs: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for (kind, _), o in objs.items() if kind in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize("which", ["default", "full"])
def test_every_object_is_labelled_and_pods_are_locked_down(
    which: str, request: pytest.FixtureRequest
) -> None:
    objs = request.getfixturevalue(which)
    for obj in objs.values():
        _labels_ok(obj)
        if obj["kind"] == "CustomResourceDefinition":
            continue  # named by its group and plural
        assert obj["metadata"]["name"].startswith("rel-durable-workflows"), obj["metadata"]["name"]
    for workload in _pods(objs):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        sel = workload["spec"]["selector"]["matchLabels"]
        assert sel.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]


def test_operator_deployment(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    dep = default["Deployment", "rel-durable-workflows-operator"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rel-durable-workflows-operator"
    (c,) = pod["containers"]
    assert c["image"] == "ghcr.io/durable-workflows/operator:0.1.0"
    env = {e["name"]: e for e in c["env"]}
    assert env["DURABLE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-durable-workflows-redis-url",
        "key": "redis-url",
    }
    assert env["DURABLE_PEERING"]["value"] == "rel-durable-workflows"
    assert env["DURABLE_WORKER_REDIS_SECRET"]["value"] == "rel-durable-workflows-redis-url"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"health": 8080, "metrics": 9090}
    assert env["DURABLE_LIVENESS"]["value"].endswith(":8080/healthz")


def test_rbac_is_least_privilege(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    role = default["ClusterRole", "rel-durable-workflows-operator"]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                assert "*" not in rule["verbs"] and res != "*" and group != "*"
                granted.setdefault((group, res), set()).update(rule["verbs"])
    assert ("", "secrets") not in granted
    # Pods: only read, for the termination message of a replay-check Job's pod (the check's verdict);
    # no exec, no logs, no writes: the operator never acts on a pod.
    assert granted["", "pods"] == {"get", "list"}
    assert not {("", "pods/exec"), ("", "pods/log"), ("", "pods/attach")} & set(granted)
    assert granted["durable.dev", "durableexecutions/status"] == {"get", "patch"}
    assert "delete" in granted["durable.dev", "durableexecutions"]
    assert "delete" not in granted["durable.dev", "durableworkflows"]
    # One Deployment per worker version: listed, scaled, deleted once its version has drained.
    assert granted["apps", "deployments"] == {"get", "list", "create", "patch", "delete"}
    assert granted["batch", "jobs"] == {"get", "list", "create", "delete"}
    assert granted["", "events"] == {"create"}
    binding = default["ClusterRoleBinding", "rel-durable-workflows-operator"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-durable-workflows-operator", "namespace": "durable"}
    ]


def _granted(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                granted.setdefault((group, res), set()).update(rule["verbs"])
    return granted


def test_default_peering_is_cluster_wide(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert [k for k in default if k[0] in ("KopfPeering", "Role", "RoleBinding")] == []
    assert ("ClusterKopfPeering", "rel-durable-workflows") in default
    granted = _granted(default["ClusterRole", "rel-durable-workflows-operator"]["rules"])
    assert granted["kopf.dev", "clusterkopfpeerings"] == {"get", "list", "watch", "patch"}
    assert ("kopf.dev", "kopfpeerings") not in granted


def test_namespaced_operator_peers_in_each_watched_namespace() -> None:
    # kopf with --namespace peers in a namespaced KopfPeering (same name) in each watched namespace.
    objs = render("--set", "operator.watchNamespaces={a,b}")
    assert not [k for k in objs if k[0] == "ClusterKopfPeering"]
    for ns in ("a", "b"):
        peering = objs["KopfPeering", f"{ns}/rel-durable-workflows"]
        assert peering["metadata"]["namespace"] == ns
        assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install"
        role = objs["Role", f"{ns}/rel-durable-workflows-operator-peering"]
        assert _granted(role["rules"]) == {("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"}}
        named = [r for r in role["rules"] if {"get", "patch"} & set(r["verbs"])]
        assert all(r["resourceNames"] == ["rel-durable-workflows"] for r in named)
        binding = objs["RoleBinding", f"{ns}/rel-durable-workflows-operator-peering"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "rel-durable-workflows-operator-peering",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rel-durable-workflows-operator", "namespace": "durable"}
        ]
    assert {k for k in objs if k[0] in ("KopfPeering", "Role", "RoleBinding")} == {
        (kind, f"{ns}/{name}")
        for ns in ("a", "b")
        for kind, name in (
            ("KopfPeering", "rel-durable-workflows"),
            ("Role", "rel-durable-workflows-operator-peering"),
            ("RoleBinding", "rel-durable-workflows-operator-peering"),
        )
    }
    granted = _granted(objs["ClusterRole", "rel-durable-workflows-operator"]["rules"])
    assert ("kopf.dev", "clusterkopfpeerings") not in granted
    # The peering object kopf and the activity gate read is the one the Deployment names.
    c = objs["Deployment", "rel-durable-workflows-operator"]["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["--namespace=a", "--namespace=b"]
    assert {"name": "DURABLE_PEERING", "value": "rel-durable-workflows"} in c["env"]
    # Both peering CRDs ship, whichever mode the release runs in.
    assert set(_crds(objs)) == CRD_NAMES


def test_no_peering_objects_without_peering() -> None:
    objs = render("--set", "operator.watchNamespaces={a}", "--set", "operator.peering.enabled=false")
    assert not [k for k in objs if k[0] in ("KopfPeering", "ClusterKopfPeering", "Role", "RoleBinding")]


def test_worker_and_redis(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    worker = default["Deployment", "rel-durable-workflows-worker"]["spec"]["template"]["spec"]
    (c,) = worker["containers"]
    assert c["args"] == [
        "worker",
        "--app",
        "durable.demo",
        "--concurrency",
        "64",
        "--redis-url",
        "$(DURABLE_REDIS_URL)",
    ]  # no --retention: histories are kept unless worker.retentionSeconds says otherwise
    assert worker["automountServiceAccountToken"] is False
    redis = default["StatefulSet", "rel-durable-workflows-redis"]["spec"]["template"]["spec"]
    assert redis["containers"][0]["image"].startswith("docker.io/library/redis:")


def test_full_values(full: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert ("StatefulSet", "rel-durable-workflows-redis") not in full
    url = full["Secret", "rel-durable-workflows-redis-url"]["stringData"]["redis-url"]
    assert (
        url == "rediss://:s3cr3t%2F%2Bpass@redis.example.com:6380/2?ssl_ca_certs=/etc/durable/redis-ca/ca.crt"
    )
    op = full["Deployment", "rel-durable-workflows-operator"]
    assert op["spec"]["replicas"] == 2 and op["metadata"]["labels"]["team"] == "payments"
    pod = op["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    (c,) = pod["containers"]
    assert c["image"] == "registry.example.com/durable/operator:1.2.3"
    assert c["args"] == ["--namespace=orders", "--namespace=billing"]
    peerings = {k for k in full if k[0] in ("KopfPeering", "ClusterKopfPeering")}
    assert peerings == {
        ("KopfPeering", "orders/rel-durable-workflows"),
        ("KopfPeering", "billing/rel-durable-workflows"),
    }
    for dep in (
        "rel-durable-workflows-operator",
        "rel-durable-workflows-worker",
        "rel-durable-workflows-dashboard",
    ):
        spec = full["Deployment", dep]["spec"]["template"]["spec"]
        assert {"name": "redis-ca", "secret": {"secretName": "redis-ca"}} in spec["volumes"]
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"name": "redis-ca", "mountPath": "/etc/durable/redis-ca", "readOnly": True} in mounts
    worker = full["Deployment", "rel-durable-workflows-worker"]
    assert worker["spec"]["replicas"] == 3
    wc = worker["spec"]["template"]["spec"]["containers"][0]
    assert wc["args"][:5] == ["worker", "--app", "shop.workflows", "--concurrency", "128"]
    assert wc["args"][-4:] == ["--version", "2026.12-a", "--retention", "604800"]
    assert {"name": "SHOP_REGION", "value": "eu-west-1"} in wc["env"]
    sm = full["ServiceMonitor", "rel-durable-workflows"]
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    svc = full["Service", "rel-durable-workflows-operator-metrics"]
    assert svc["spec"]["ports"][0]["port"] == 9100
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()


DASHBOARD = ("Deployment", "Service", "Ingress", "Secret")


def test_no_dashboard_unless_enabled(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert not [k for k in default if "dashboard" in k[1]]


def test_dashboard_with_full_values(full: dict[tuple[str, str], dict[str, Any]]) -> None:
    names = {k for k in full if "dashboard" in k[1]}
    assert names == {
        ("Deployment", "rel-durable-workflows-dashboard"),
        ("Service", "rel-durable-workflows-dashboard"),
        ("Ingress", "rel-durable-workflows-dashboard"),
        ("Secret", "rel-durable-workflows-dashboard-token"),
    }
    assert full["Secret", "rel-durable-workflows-dashboard-token"]["stringData"] == {
        "token": "a-long-dashboard-token-for-ci"
    }
    dep = full["Deployment", "rel-durable-workflows-dashboard"]
    assert (
        dep["spec"]["replicas"] == 2
        and dep["metadata"]["labels"]["app.kubernetes.io/component"] == "dashboard"
    )
    pod = dep["spec"]["template"]["spec"]
    # It never talks to the Kubernetes API: no ServiceAccount token, no ServiceAccount of its own.
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    (c,) = pod["containers"]
    assert c["image"] == "registry.example.com/durable/worker:1.2.3"
    assert c["args"] == [
        "dashboard", "--host", "0.0.0.0", "--port", "8080", "--redis-url", "$(DURABLE_REDIS_URL)",
        "--app", "shop.workflows", "--read-token",
    ]  # fmt: skip
    env = {e["name"]: e for e in c["env"]}
    assert env["DURABLE_DASHBOARD_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-durable-workflows-dashboard-token",
        "key": "token",
    }
    assert env["DURABLE_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "rel-durable-workflows-redis-url"
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    svc = full["Service", "rel-durable-workflows-dashboard"]
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    ing = full["Ingress", "rel-durable-workflows-dashboard"]["spec"]
    assert ing["ingressClassName"] == "nginx" and ing["tls"][0]["secretName"] == "durable-dashboard-tls"
    (rule,) = ing["rules"]
    assert rule["host"] == "durable.shop.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "rel-durable-workflows-dashboard",
        "port": {"name": "http"},
    }


def test_dashboard_token_from_an_existing_secret_or_none() -> None:
    objs = render(
        "--set", "dashboard.enabled=true",
        "--set", "dashboard.auth.existingSecret=ops-token",
        "--set", "dashboard.auth.existingSecretKey=dash",
    )  # fmt: skip
    assert ("Secret", "rel-durable-workflows-dashboard-token") not in objs
    assert ("Ingress", "rel-durable-workflows-dashboard") not in objs
    (c,) = objs["Deployment", "rel-durable-workflows-dashboard"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["DURABLE_DASHBOARD_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ops-token", "key": "dash"}
    assert "--read-token" not in c["args"]
    # No token at all: a read-only dashboard (no token variable; actions are refused).
    bare = render(
        "--set",
        "dashboard.enabled=true",
        "--set",
        "dashboard.auth.dangerouslyAllowUnauthenticatedActions=true",
    )
    (c,) = bare["Deployment", "rel-durable-workflows-dashboard"]["spec"]["template"]["spec"]["containers"]
    assert "DURABLE_DASHBOARD_TOKEN" not in {e["name"] for e in c["env"]}
    assert c["args"][-1] == "--dangerously-allow-unauthenticated-actions"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "dashboard.enabled=true", "--set", "dashboard.auth.protectReads=true"],
            "protectReads needs a token",
        ),
        (["--set", "dashboard.auth.token=short"], "token"),
        (["--set", "dashboard.service.type=Magic"], "type"),
        (["--set", "worker.concurrency=0"], "minimum"),
        (["--set", "worker.retentionSeconds=-1"], "retentionSeconds"),
        (["--set", "worker.version=x@y"], "version"),
        (["--set", "operator.logLevel=LOUD"], "logLevel"),
        (["--set", "surprise=1"], "surprise"),
        (["--set", "redis.enabled=false"], "set redis.url, redis.existingSecret, or redis.enabled=true"),
        (["--set", "redis.url=http://x"], "url"),
    ],
)
def test_bad_values_are_refused(args: list[str], message: str) -> None:
    proc = helm("template", "rel", str(CHART), *args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_existing_secret_is_used_as_is() -> None:
    objs = render(
        "--set",
        "redis.enabled=false",
        "--set",
        "redis.existingSecret=my-redis",
        "--set",
        "redis.existingSecretKey=url",
    )
    assert not [k for k in objs if k[0] == "Secret"]
    env = objs["Deployment", "rel-durable-workflows-operator"]["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    url = next(e for e in env if e["name"] == "DURABLE_REDIS_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "my-redis", "key": "url"}


def _crds(objs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: obj for (kind, name), obj in objs.items() if kind == "CustomResourceDefinition"}


def test_crds_are_rendered_by_default_and_kept(default: dict[tuple[str, str], dict[str, Any]]) -> None:
    crds = _crds(default)
    assert set(crds) == CRD_NAMES
    for name, obj in crds.items():
        assert obj["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}, name
        # The same schema as the generated crds/ files (`kubectl apply -f crds/`).
        plain = yaml.safe_load((ROOT / "crds" / f"{name}.yaml").read_text())
        assert obj["spec"] == plain["spec"], name
        assert plain["metadata"]["labels"].items() <= obj["metadata"]["labels"].items()
    # Helm maps plain objects before it creates any: the peering object, whose CRD is a template
    # of the same release, is a post-install hook.
    peering = default["ClusterKopfPeering", "rel-durable-workflows"]
    assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install"


def test_crds_can_be_left_out_or_let_go() -> None:
    without = render("--set", "crds.enabled=false")
    assert _crds(without) == {}
    assert ("Deployment", "rel-durable-workflows-operator") in without
    not_kept = _crds(render("--set", "crds.keep=false"))
    assert set(not_kept) == CRD_NAMES
    assert all("annotations" not in obj["metadata"] for obj in not_kept.values())


def test_chart_has_no_crds_folder() -> None:
    # Helm's crds/ folder is installed once and never upgraded: the CRDs are templates instead.
    assert not (CHART / "crds").exists()


def test_every_value_is_commented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    in_block: int | None = None
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):(.*)$", line)
        if not m:
            continue
        indent = len(m.group(1))
        if in_block is not None and indent > in_block:
            continue  # contents of a documented default map (resources)
        in_block = indent if m.group(2) == "resources" else None
        prev = next((p for p in reversed(lines[:i]) if p.strip()), "")
        is_parent = m.group(3).strip() == "" and m.group(2) != "resources"
        assert is_parent or prev.strip().startswith("#"), f"values.yaml line {i + 1} has no comment: {line}"


def test_values_schema_is_strict() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: dict[str, Any], where: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, where
            for key, sub in node["properties"].items():
                walk(sub, f"{where}.{key}")

    walk(schema, "values")
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    import jsonschema

    jsonschema.validate(defaults, schema)
    jsonschema.validate(yaml.safe_load(FULL.read_text()), schema)


def test_notes_render() -> None:
    proc = helm("install", "rel", str(CHART), "--dry-run=client", "--namespace", "durable")
    assert proc.returncode == 0, proc.stderr
    assert "kubectl get durableexecutions" in proc.stdout
    assert Path(CHART / "templates" / "NOTES.txt").is_file()
