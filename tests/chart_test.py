#!/usr/bin/env python3
"""Tests of the Helm chart (charts/landlord) and the plain install YAML (manifests/install.yaml).

    python3 tests/chart_test.py            # run every check
    python3 tests/chart_test.py --update   # first re-copy crds/ and manifests/examples/ into
                                           # the chart and regenerate manifests/install.yaml
    python3 tests/chart_test.py --cluster  # only checks 6 and 7, against the cluster in
                                           # KUBECONFIG instead of kube-test (cleans up after)

Helm itself is the real Helm v4 library, through `helm-python-sdk` from PyPI (no helm binary).
The script creates the virtualenv .venv-chart/ at the repository root on first use, installs
its pinned requirements there and re-executes itself inside it; later runs take seconds.

Checks:
  1. `helm lint` (strict) reports no errors and no warnings, with default and non-default values.
  2. The render with default values: exactly the expected objects, Deployment args, image,
     env, ports, security context and probes, the operator's exact RBAC rules (the narrow ones
     with `bind` restricted to admin/view and no wildcard, plus the archive rules: the one
     wildcard, with get/list/create/patch only, `escalate`/`bind` on Roles and `bind` on the
     ClusterRoles of archive.rbac.bindClusterRoles; without them when archive.rbac.enabled is
     false), the standard labels; and the non-default switches (the
     PrometheusRule holds the groups of files/alerts.yaml, the dashboard ConfigMap the JSON
     with the Grafana sidecar's label).
  2c. The archive store: the Deployment's archive environment variables, the claim mounted at
     a file:// url's path (or an existing one), the S3 options and credentials (secretKeyRef),
     a file:// url without persistence refused, the NOTES warning about a one-node volume with
     more than one pod, and the Role for the archive key Secret.
  3. values.schema.json accepts the defaults and rejects bad values.
  4. The chart's crds/ and files/examples/ are byte-identical copies of crds/ and
     manifests/examples/.
  5. manifests/install.yaml is the Namespace, the CRDs and the default render (documents
     compared as parsed objects, in any order).
  6. kubectl applies manifests/install.yaml (server-side) to kube-test, twice, and reads the
     Deployment back; `kubectl auth can-i` as the operator's ServiceAccount answers what the
     RBAC tables of the chart README say; the chart's examples are accepted by the installed
     CRDs.
  7. The operator binary, authenticated as the chart's ServiceAccount (so with exactly the
     chart's RBAC), provisions the example tenants on kube-test; then a tenant with a
     ConfigMap is deleted with the default deletionPolicy (Archive): it is archived (the
     archive is in the operator's --archive-url, a temp dir) and gone within 120 s, and the
     key Secret is in the release namespace.
Checks 6 and 7 are skipped, with the reason printed, when kubectl or the binaries
(target/debug/kube-test, target/debug/landlord) are missing.

The last line of output is `N passed, N failed`; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from testenv import ensure_venv, run_checks, stop_process  # noqa: E402  (the venv set-up shared with the ops tests)

ensure_venv()

# From here on we run inside .venv-chart.
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402

import helm_python as helm  # noqa: E402
import yaml  # noqa: E402

CHART = ROOT / "charts" / "landlord"
INSTALL = ROOT / "manifests" / "install.yaml"
EXAMPLES = ROOT / "manifests" / "examples"
RELEASE = "landlord"
NAMESPACE = "landlord-system"
KUBE_TEST = ROOT / "target" / "debug" / "kube-test"
LANDLORD = ROOT / "target" / "debug" / "landlord"

ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
EXPECTED_RULES = [
    {
        "apiGroups": ["landlord.dev"],
        "resources": [
            "tenants",
            "tenants/status",
            "tenants/finalizers",
            "tenantquotas",
            "tenantquotas/status",
            "tenantusages",
            "tenantusages/status",
        ],
        "verbs": ALL_VERBS,
    },
    {"apiGroups": [""], "resources": ["namespaces", "resourcequotas", "limitranges"], "verbs": ALL_VERBS},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ALL_VERBS},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["rolebindings", "clusterroles", "clusterrolebindings"],
        "verbs": ALL_VERBS,
    },
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": ["admin", "view"],
    },
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "watch", "create", "update", "patch"],
    },
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    # Hibernation.
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"],
     "verbs": ["list", "patch"]},
    {"apiGroups": ["apps"],
     "resources": ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
     "verbs": ["patch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["list", "patch"]},
]
# archive.rbac.enabled (the default): archiving lists every namespaced kind, restoring applies
# and reads back every archived object, and a tenant's Roles and RoleBindings.
ARCHIVE_RULES = [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "create", "patch"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
     "verbs": ["escalate", "bind"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
     "resourceNames": ["admin", "edit", "view"]},
]
ARCHIVE_DIR = "/var/lib/landlord/archives"
ARCHIVE_ENV = [
    {"name": "LANDLORD_ARCHIVE_URL", "value": f"file://{ARCHIVE_DIR}"},
    {"name": "LANDLORD_ARCHIVE_KEY_SECRET", "value": "landlord-archive-key"},
    {"name": "LANDLORD_PURGE_INTERVAL", "value": "1h"},
]
KEY_SECRET_RULES = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
     "resourceNames": ["landlord-archive-key"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
]
STANDARD_LABELS = {
    "helm.sh/chart": "landlord-0.1.0",
    "app.kubernetes.io/name": "landlord",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/managed-by": "Helm",
}
INSTALL_HEADER = """\
# Landlord, plain install: the Namespace, the CRDs and the Helm chart charts/landlord rendered
# with its default values (release "landlord", namespace "landlord-system").
#
#   kubectl apply --server-side -f manifests/install.yaml
#
# Generated by `python3 tests/chart_test.py --update`; do not edit (a test checks it).
"""
NAMESPACE_DOC = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/name: landlord
    app.kubernetes.io/part-of: landlord
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/audit: restricted
    pod-security.kubernetes.io/warn: restricted
"""


# ---------------------------------------------------------------------------------------------
# Rendering helpers


def render(values: dict | None = None) -> dict[str, str]:
    """Template path -> rendered text, without NOTES.txt and empty outputs."""
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return {
        path: text
        for path, text in sorted(out.items())
        if not path.endswith("NOTES.txt") and any(yaml.safe_load_all(text))
    }


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def render_docs(values: dict | None = None) -> list[dict]:
    return [d for text in render(values).values() for d in docs_of(text)]


def key(doc: dict) -> tuple[str, str, str]:
    meta = doc.get("metadata", {})
    return (doc["kind"], meta.get("namespace", ""), meta["name"])


def by_key(docs: list[dict]) -> dict[tuple[str, str, str], dict]:
    out: dict[tuple[str, str, str], dict] = {}
    for d in docs:
        assert key(d) not in out, f"duplicate object {key(d)}"
        out[key(d)] = d
    return out


# Helm's install order for the kinds we render.
KIND_ORDER = ["Namespace", "CustomResourceDefinition", "ServiceAccount", "PersistentVolumeClaim",
              "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
              "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Service",
              "Deployment", "ServiceMonitor"]


def install_yaml() -> str:
    """What manifests/install.yaml must contain."""
    parts = [INSTALL_HEADER + "---\n" + NAMESPACE_DOC]
    for crd in sorted((CHART / "crds").glob("*.yaml")):
        text = crd.read_text()
        parts.append(f"# Source: landlord/crds/{crd.name}\n" + text.removeprefix("---\n"))
    rendered = []
    for path, text in render().items():
        for doc_text in text.split("\n---\n"):
            doc = yaml.safe_load(doc_text)
            if doc:
                rendered.append((KIND_ORDER.index(doc["kind"]), doc["metadata"]["name"], path,
                                 doc_text.strip("\n")))
    for _, _, path, doc_text in sorted(rendered):
        parts.append(f"# Source: {path}\n{doc_text}\n")
    return "---\n".join(parts)


def update() -> None:
    """Re-copy crds/ and manifests/examples/ into the chart; regenerate manifests/install.yaml."""
    for src, dst in ((ROOT / "crds", CHART / "crds"), (EXAMPLES, CHART / "files" / "examples")):
        for old in dst.glob("*.yaml"):
            old.unlink()
        for f in sorted(src.glob("*.yaml")):
            shutil.copyfile(f, dst / f.name)
    INSTALL.write_text(install_yaml())
    print(f"updated {CHART.relative_to(ROOT)}/crds, files/examples and {INSTALL.relative_to(ROOT)}")


# ---------------------------------------------------------------------------------------------
# Checks. Each raises AssertionError (or anything else) on failure.


def check_lint() -> None:
    for values in (None, {"examples": {"enabled": True}, "serviceMonitor": {"enabled": True},
                          "prometheusRule": {"enabled": True}, "dashboards": {"enabled": True},
                          "operator": {"logFormat": "json", "extraArgs": ["--resync=30s"]},
                          "archive": {"url": "s3://archives/landlord",
                                      "s3": {"endpoint": "http://minio:9000", "region": "eu-1",
                                             "allowHttp": True, "existingSecret": "s3"}}}):
        report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        assert report["errors"] == [], report["errors"]
        bad = [m for m in report["messages"] if m["severity"] >= 2]
        assert bad == [], bad
        # The only finding allowed is the informational "icon is recommended".
        info = [m["error"] for m in report["messages"]]
        assert info in ([], ["icon is recommended"]), info


def check_default_render() -> None:
    objs = by_key(render_docs())
    assert sorted(objs) == sorted([
        ("ClusterRole", "", "landlord"),
        ("ClusterRoleBinding", "", "landlord"),
        ("Deployment", NAMESPACE, "landlord"),
        ("PersistentVolumeClaim", NAMESPACE, "landlord-archives"),
        ("Role", NAMESPACE, "landlord"),
        ("RoleBinding", NAMESPACE, "landlord"),
        ("Service", NAMESPACE, "landlord"),
        ("ServiceAccount", NAMESPACE, "landlord"),
        ("ValidatingAdmissionPolicy", "", "landlord-protected-tenants"),
        ("ValidatingAdmissionPolicy", "", "landlord-tenant-namespaces"),
        ("ValidatingAdmissionPolicyBinding", "", "landlord-protected-tenants"),
        ("ValidatingAdmissionPolicyBinding", "", "landlord-tenant-namespaces"),
    ]), sorted(objs)
    # The policies exempt exactly the operator's ServiceAccount and deny through their
    # bindings; tests/integration/privileges.rs shows what they refuse on a server.
    landlord = "system:serviceaccount:landlord-system:landlord"
    for name in ("landlord-protected-tenants", "landlord-tenant-namespaces"):
        policy = objs[("ValidatingAdmissionPolicy", "", name)]["spec"]
        assert policy["failurePolicy"] == "Fail"
        assert {"name": "not-landlord",
                "expression": f'request.userInfo.username != "{landlord}"'} \
            in policy["matchConditions"], policy["matchConditions"]
        assert [v["reason"] for v in policy["validations"]] == ["Forbidden"]
        binding = objs[("ValidatingAdmissionPolicyBinding", "", name)]["spec"]
        assert binding == {"policyName": name, "validationActions": ["Deny"]}, binding
    for k, obj in objs.items():
        labels = obj["metadata"]["labels"]
        assert {n: labels.get(n) for n in STANDARD_LABELS} == STANDARD_LABELS, (k, labels)

    dep = objs[("Deployment", NAMESPACE, "landlord")]
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    selector = {"app.kubernetes.io/name": "landlord", "app.kubernetes.io/instance": RELEASE}
    assert spec["selector"] == {"matchLabels": selector}
    pod = spec["template"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert "annotations" not in pod["metadata"]
    ps = pod["spec"]
    assert ps["serviceAccountName"] == "landlord"
    assert ps["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }, ps["securityContext"]
    for absent in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets",
                   "priorityClassName"):
        assert absent not in ps, absent
    [c] = ps["containers"]
    assert c["name"] == "landlord"
    assert c["image"] == "ghcr.io/landlord-dev/landlord:0.1.0", c["image"]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["args"] == ["run", "--leader-elect", "--metrics-addr=0.0.0.0:8080", "--resync=5m",
                         "--concurrency=8", "--kube-qps=100", "--kube-burst=200",
                         "--log-format=text", "--migration-batch=50",
                         "--migration-parallelism=4"], c["args"]
    assert "command" not in c
    assert c["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "RUST_LOG", "value": "info"},
        *ARCHIVE_ENV,
    ], c["env"]
    assert c["ports"] == [
        {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
        {"name": "engine", "containerPort": 8081, "protocol": "TCP"},
    ], c["ports"]
    assert c["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }, c["securityContext"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["periodSeconds"] == 10
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "1", "memory": "512Mi"}}, c["resources"]
    # The file:// archive store: the chart's claim, mounted at the url's path.
    assert c["volumeMounts"] == [{"name": "archives", "mountPath": ARCHIVE_DIR}], c["volumeMounts"]
    assert ps["volumes"] == [{"name": "archives",
                              "persistentVolumeClaim": {"claimName": "landlord-archives"}}]
    pvc = objs[("PersistentVolumeClaim", NAMESPACE, "landlord-archives")]
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"],
                           "resources": {"requests": {"storage": "10Gi"}}}, pvc["spec"]
    # helm uninstall keeps the archives.
    assert pvc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}

    svc = objs[("Service", NAMESPACE, "landlord")]["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["selector"] == selector
    assert svc["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"},
        {"name": "engine", "port": 8081, "targetPort": "engine", "protocol": "TCP"},
    ], svc["ports"]

    role = objs[("ClusterRole", "", "landlord")]
    assert role["rules"] == EXPECTED_RULES + ARCHIVE_RULES, role["rules"]
    # The wildcard is the archive rule's alone, and never with a verb that changes or removes
    # what exists (update, delete) or that streams (watch).
    wild = [r for r in role["rules"] if "*" in r["apiGroups"] + r["resources"] + r["verbs"]]
    assert wild == [ARCHIVE_RULES[0]], wild
    assert not {"update", "delete", "deletecollection", "watch", "*"} & set(wild[0]["verbs"])
    # `bind` on ClusterRoles only by name; `escalate` on namespaced Roles only.
    for r in role["rules"]:
        if {"bind", "escalate"} & set(r["verbs"]) and "clusterroles" in r["resources"]:
            assert r["verbs"] == ["bind"] and r.get("resourceNames"), r
        assert "impersonate" not in r["verbs"] and "deletecollection" not in r["verbs"], r
    # Without archive.rbac: the provisioning and hibernation rules only, no wildcard, no
    # escalate, bind on admin and view alone.
    narrow = by_key(render_docs({"archive": {"rbac": {"enabled": False}}}))
    rules = narrow[("ClusterRole", "", "landlord")]["rules"]
    assert rules == EXPECTED_RULES, rules
    for r in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in r[field], r
        assert not {"escalate", "impersonate", "deletecollection"} & set(r["verbs"]), r
    binds = [r for r in rules if "bind" in r["verbs"]]
    assert binds == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                      "verbs": ["bind"], "resourceNames": ["admin", "view"]}], binds
    # The key Secret's Role stays: it is not part of archive.rbac.
    assert narrow[("Role", NAMESPACE, "landlord")]["rules"] == KEY_SECRET_RULES
    # Other ClusterRoles to bind; an empty list binds any.
    bind = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
            "verbs": ["bind"]}
    for names, expected in ((["admin", "tenant-deployer"],
                             {**bind, "resourceNames": ["admin", "tenant-deployer"]}),
                            ([], bind)):
        rules = by_key(render_docs({"archive": {"rbac": {"bindClusterRoles": names}}}))[
            ("ClusterRole", "", "landlord")]["rules"]
        assert rules[-1] == expected, rules[-1]
    crb = objs[("ClusterRoleBinding", "", "landlord")]
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "landlord"}
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "landlord",
                                "namespace": NAMESPACE}]
    # The archive key Secret in the operator's namespace: read by name, created when absent.
    assert objs[("Role", NAMESPACE, "landlord")]["rules"] == KEY_SECRET_RULES
    rb = objs[("RoleBinding", NAMESPACE, "landlord")]
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "landlord"}
    assert rb["subjects"] == crb["subjects"]


def check_values_render() -> None:
    objs = by_key(render_docs({
        "image": {"tag": "v9.9.9", "pullPolicy": "Always"},
        "replicas": 0,
        "operator": {"resync": "30s", "concurrency": 16, "kubeQps": 50, "kubeBurst": 60,
                     "logFormat": "json", "logLevel": "debug",
                     "extraArgs": ["--flag=x"], "extraEnv": [{"name": "A", "value": "b"}]},
        "migration": {"batch": 200, "parallelism": 8},
        "rateLimitService": {"enabled": True, "port": 9090, "unknown": "deny",
                             "allowedGroups": ["system:serviceaccounts:gw", "gateways"]},
        "podAnnotations": {"a": "b"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        "dashboards": {"enabled": True, "annotations": {"grafana_folder": "Landlord"}},
        "examples": {"enabled": True},
        "admissionPolicy": {"enabled": False},
    }))
    assert not [k for k in objs if k[0].startswith("ValidatingAdmissionPolicy")], sorted(objs)
    dep = objs[("Deployment", NAMESPACE, "landlord")]["spec"]
    assert dep["replicas"] == 0
    pod = dep["template"]
    assert pod["metadata"]["annotations"] == {"a": "b"}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["spec"]["affinity"] == {"nodeAffinity": {}}
    [c] = pod["spec"]["containers"]
    assert c["image"] == "ghcr.io/landlord-dev/landlord:v9.9.9"
    assert c["imagePullPolicy"] == "Always"
    assert c["args"] == ["run", "--leader-elect", "--metrics-addr=0.0.0.0:8080", "--resync=30s",
                         "--concurrency=16", "--kube-qps=50", "--kube-burst=60",
                         "--log-format=json", "--migration-batch=200",
                         "--migration-parallelism=8", "--rls-addr=0.0.0.0:8082",
                         "--rls-unknown=deny",
                         "--rls-allowed-group=system:serviceaccounts:gw,gateways",
                         "--flag=x"], c["args"]
    assert c["ports"][2] == {"name": "grpc-rls", "containerPort": 8082, "protocol": "TCP"}
    svc = objs[("Service", NAMESPACE, "landlord")]["spec"]["ports"]
    assert svc[2] == {"name": "grpc-rls", "port": 9090, "targetPort": "grpc-rls",
                      "protocol": "TCP", "appProtocol": "grpc"}, svc
    assert c["env"][2:] == [{"name": "RUST_LOG", "value": "debug"}, *ARCHIVE_ENV,
                            {"name": "A", "value": "b"}], c["env"]
    sm = objs[("ServiceMonitor", NAMESPACE, "landlord")]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s",
                                        "scrapeTimeout": "10s"}]
    # The examples, exactly as in manifests/examples/.
    expected = by_key([d for f in sorted(EXAMPLES.glob("*.yaml")) for d in docs_of(f.read_text())])
    got = {k: v for k, v in objs.items() if k[0] in ("Tenant", "TenantQuota")}
    assert got == expected, sorted(got)
    assert sorted(expected) == [("Tenant", "", "acme"), ("Tenant", "", "globex"),
                                ("TenantQuota", "", "free"), ("TenantQuota", "", "pro")]
    # The PrometheusRule holds the rule groups of files/alerts.yaml, filled in for this release
    # (tests/alerts_test.py runs promtool on them).
    rule = objs[("PrometheusRule", NAMESPACE, "landlord")]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert STANDARD_LABELS.items() <= rule["metadata"]["labels"].items()
    source = (CHART / "files" / "alerts.yaml").read_text()
    groups = re.findall(r"^  - name: (\S+)$", source, re.M)
    alerts = re.findall(r"^      - alert: (\S+)$", source, re.M)
    assert [g["name"] for g in rule["spec"]["groups"]] == groups, rule["spec"]["groups"]
    assert [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]] == alerts
    assert len(alerts) == 5, alerts
    text = yaml.safe_dump(rule["spec"])
    assert 'job="landlord",namespace="landlord-system"' in text
    assert "{{ $labels.tenant }}" in text and "$t." not in text, text
    # The dashboard ConfigMap carries the file as is, with the Grafana sidecar's label.
    cm = objs[("ConfigMap", NAMESPACE, "landlord-dashboards")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]["labels"]
    assert STANDARD_LABELS.items() <= cm["metadata"]["labels"].items()
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Landlord"}
    dashboard = (CHART / "files" / "dashboards" / "landlord.json").read_text()
    assert list(cm["data"]) == ["landlord.json"], list(cm["data"])
    assert cm["data"]["landlord.json"].strip() == dashboard.strip()
    assert json.loads(cm["data"]["landlord.json"])["uid"] == "landlord"
    # Another sidecar label and namespace.
    objs2 = by_key(render_docs({"dashboards": {"enabled": True, "label": "dashboards",
                                               "labelValue": "landlord", "namespace": "grafana",
                                               "labels": {"team": "platform"}}}))
    cm = objs2[("ConfigMap", "grafana", "landlord-dashboards")]
    assert {k: cm["metadata"]["labels"].get(k) for k in ("dashboards", "team")} == {
        "dashboards": "landlord", "team": "platform"}, cm["metadata"]["labels"]
    assert "grafana_dashboard" not in cm["metadata"]["labels"]

    # No ServiceAccount or RBAC of our own; another release name gives other names.
    objs = by_key(render_docs({"serviceAccount": {"create": False, "name": "ops"},
                               "rbac": {"create": False}}))
    assert sorted(objs) == [("Deployment", NAMESPACE, "landlord"),
                            ("PersistentVolumeClaim", NAMESPACE, "landlord-archives"),
                            ("Service", NAMESPACE, "landlord"),
                            ("ValidatingAdmissionPolicy", "", "landlord-protected-tenants"),
                            ("ValidatingAdmissionPolicy", "", "landlord-tenant-namespaces"),
                            ("ValidatingAdmissionPolicyBinding", "", "landlord-protected-tenants"),
                            ("ValidatingAdmissionPolicyBinding", "", "landlord-tenant-namespaces"),
                            ], sorted(objs)
    # The admission policies exempt the ServiceAccount the operator runs as.
    conditions = objs[("ValidatingAdmissionPolicy", "", "landlord-tenant-namespaces")]["spec"][
        "matchConditions"]
    assert conditions[-1]["expression"] == \
        'request.userInfo.username != "system:serviceaccount:landlord-system:ops"', conditions
    assert objs[("Deployment", NAMESPACE, "landlord")]["spec"]["template"]["spec"][
        "serviceAccountName"] == "ops"
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(None, name="tenancy", namespace="ops")
        names = {key(d) for p, t in out.items() if not p.endswith("NOTES.txt") for d in docs_of(t)}
        assert ("Deployment", "ops", "tenancy-landlord") in names, names
        try:
            chart.render({"serviceAccount": {"create": False}}, name=RELEASE, namespace=NAMESPACE)
        except helm.HelmError as e:
            assert "serviceAccount.name is required" in str(e), e
        else:
            raise AssertionError("serviceAccount.create=false without a name rendered")


def check_archive_render() -> None:
    def deployment_and_kinds(values: dict) -> tuple[dict, list]:
        objs = by_key(render_docs(values))
        return objs[("Deployment", NAMESPACE, "landlord")]["spec"]["template"]["spec"], sorted(
            k for k in objs if k[0] == "PersistentVolumeClaim")

    # S3: the options as environment variables, the credentials from the Secret, no volume.
    pod, claims = deployment_and_kinds({"archive": {
        "url": "s3://archives/landlord", "keySecret": "keys", "purgeInterval": "15m",
        "s3": {"endpoint": "http://minio.storage:9000", "region": "eu-west-1",
               "allowHttp": True, "existingSecret": "landlord-s3"}}})
    [c] = pod["containers"]

    def secret(key: str, **more: bool) -> dict:
        return {"secretKeyRef": {"name": "landlord-s3", "key": key, **more}}

    assert c["env"][3:] == [
        {"name": "LANDLORD_ARCHIVE_URL", "value": "s3://archives/landlord"},
        {"name": "LANDLORD_ARCHIVE_KEY_SECRET", "value": "keys"},
        {"name": "LANDLORD_PURGE_INTERVAL", "value": "15m"},
        {"name": "LANDLORD_ARCHIVE_S3_ENDPOINT", "value": "http://minio.storage:9000"},
        {"name": "AWS_REGION", "value": "eu-west-1"},
        {"name": "LANDLORD_ARCHIVE_S3_ALLOW_HTTP", "value": "true"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": secret("AWS_ACCESS_KEY_ID")},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret("AWS_SECRET_ACCESS_KEY")},
        {"name": "AWS_SESSION_TOKEN", "valueFrom": secret("AWS_SESSION_TOKEN", optional=True)},
    ], c["env"]
    assert "volumeMounts" not in c and "volumes" not in pod, pod
    assert claims == []
    # S3 without a Secret (the pod's identity): no credentials, no S3 options left empty.
    pod, _ = deployment_and_kinds({"archive": {"url": "s3://archives"}})
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert names == ["POD_NAME", "POD_NAMESPACE", "RUST_LOG", "LANDLORD_ARCHIVE_URL",
                     "LANDLORD_ARCHIVE_KEY_SECRET", "LANDLORD_PURGE_INTERVAL"], names
    # Another file:// directory, on a claim of the chart's with other settings.
    pod, claims = deployment_and_kinds({"archive": {
        "url": "file:///data/archives/", "persistence": {
            "size": "50Gi", "storageClass": "nfs", "accessModes": ["ReadWriteMany"]}}})
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "archives", "mountPath": "/data/archives"}]
    assert claims == [("PersistentVolumeClaim", NAMESPACE, "landlord-archives")]
    pvc = by_key(render_docs({"archive": {"persistence": {
        "size": "50Gi", "storageClass": "nfs", "accessModes": ["ReadWriteMany"]}}}))[claims[0]]
    assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs",
                           "resources": {"requests": {"storage": "50Gi"}}}, pvc["spec"]
    # An existing claim: mounted, none created.
    pod, claims = deployment_and_kinds({"archive": {"persistence": {"existingClaim": "mine"}}})
    assert pod["volumes"] == [{"name": "archives", "persistentVolumeClaim": {"claimName": "mine"}}]
    assert claims == []
    # A file:// store with nothing to keep it in is refused: the root filesystem is read-only.
    with helm.Chart.load(str(CHART)) as chart:
        try:
            chart.render({"archive": {"persistence": {"enabled": False}}}, name=RELEASE,
                         namespace=NAMESPACE)
        except helm.HelmError as e:
            assert "archive.persistence.enabled is false" in str(e), e
        else:
            raise AssertionError("a file:// store without persistence rendered")
    # NOTES warn when a one-node volume keeps a second pod from starting, and only then.
    def notes(values: dict | None) -> str:
        with helm.Chart.load(str(CHART)) as chart:
            out = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        return next(v for k, v in out.items() if k.endswith("NOTES.txt"))
    warning = "WARNING: archives go to the volume landlord-archives (ReadWriteOnce)"
    assert warning in notes({"replicas": 2})
    assert warning in notes({"strategy": {"type": "RollingUpdate"}})
    for quiet in (None, {"replicas": 2, "archive": {"url": "s3://b"}},
                  {"replicas": 2, "archive": {"persistence": {"accessModes": ["ReadWriteMany"]}}}):
        assert "WARNING" not in notes(quiet), quiet
    # The key Secret's Role follows archive.keySecret.
    role = by_key(render_docs({"archive": {"keySecret": "keys"}}))[("Role", NAMESPACE, "landlord")]
    assert role["rules"][0]["resourceNames"] == ["keys"], role["rules"]


def check_schema() -> None:
    bad = {
        "replicas -1": {"replicas": -1},
        "replicas as a string": {"replicas": "1"},
        "image.tag as a number": {"image": {"tag": 5}},
        "unknown pullPolicy": {"image": {"pullPolicy": "Sometimes"}},
        "unknown log format": {"operator": {"logFormat": "xml"}},
        "resync not a duration": {"operator": {"resync": "5 minutes"}},
        "resync without a unit": {"operator": {"resync": "300"}},
        "zero concurrency": {"operator": {"concurrency": 0}},
        "zero migration batch": {"migration": {"batch": 0}},
        "migration parallelism above 64": {"migration": {"parallelism": 65}},
        "write budget as text": {"operator": {"kubeQps": "fast"}},
        "extraArgs not strings": {"operator": {"extraArgs": [1]}},
        "engine port out of range": {"service": {"enginePort": 70000}},
        "unknown rls answer": {"rateLimitService": {"unknown": "maybe"}},
        "no rls group": {"rateLimitService": {"allowedGroups": []}},
        "rls group with a comma": {"rateLimitService": {"allowedGroups": ["a,b"]}},
        "rls port out of range": {"rateLimitService": {"port": 0}},
        "unknown service type": {"service": {"type": "ExternalName"}},
        "serviceMonitor.enabled not a bool": {"serviceMonitor": {"enabled": "yes"}},
        "prometheusRule.enabled not a bool": {"prometheusRule": {"enabled": "yes"}},
        "alert threshold as text": {"prometheusRule": {"thresholds": {"denialsPerSecond": "1/s"}}},
        "alert for not a duration": {"prometheusRule": {"thresholds": {"noLeaderFor": "1 min"}}},
        "unknown alert threshold": {"prometheusRule": {"thresholds": {"cpu": 90}}},
        "dashboards.labelValue a number": {"dashboards": {"labelValue": 1}},
        "unknown dashboards value": {"dashboards": {"folder": "x"}},
        "unknown top-level value": {"replica": 2},
        "unknown nested value": {"image": {"name": "x"}},
        "nodeSelector value not a string": {"nodeSelector": {"a": 1}},
        "persistence.size not a string": {"archive": {"persistence": {"size": 10}}},
        "persistence.size not a quantity": {"archive": {"persistence": {"size": "10 GB"}}},
        "persistence.enabled not a bool": {"archive": {"persistence": {"enabled": "true"}}},
        "unknown access mode": {"archive": {"persistence": {"accessModes": ["ReadWriteAll"]}}},
        "archive url of another scheme": {"archive": {"url": "https://example.com/archives"}},
        "file url with a relative path": {"archive": {"url": "file://archives"}},
        "s3 url without a bucket": {"archive": {"url": "s3:///prefix"}},
        "purgeInterval not a duration": {"archive": {"purgeInterval": "1 hour"}},
        "keySecret not a Secret name": {"archive": {"keySecret": "Archive_Key"}},
        "s3.allowHttp not a bool": {"archive": {"s3": {"allowHttp": "true"}}},
        "s3.endpoint without a scheme": {"archive": {"s3": {"endpoint": "minio:9000"}}},
        "unknown archive value": {"archive": {"bucket": "x"}},
        "archive.rbac.enabled not a bool": {"archive": {"rbac": {"enabled": "no"}}},
        "bindClusterRoles not a list": {"archive": {"rbac": {"bindClusterRoles": "admin"}}},
        "bindClusterRoles with an empty name": {"archive": {"rbac": {"bindClusterRoles": [""]}}},
    }
    with helm.Chart.load(str(CHART)) as chart:
        assert chart.schema is not None
        chart.validate_schema(chart.merge_values(None))
        chart.validate_schema(chart.merge_values({"replicas": 0, "image": {"tag": "v1"},
                                                  "operator": {"resync": "250ms",
                                                               "logFormat": "json"}}))
        chart.validate_schema(chart.merge_values({"archive": {
            "url": "s3://bucket", "purgeInterval": "30m",
            "persistence": {"size": "1.5Gi", "accessModes": ["ReadWriteOncePod"]},
            "s3": {"endpoint": "https://s3.example.com", "existingSecret": "s3"}}}))
        accepted = []
        for name, values in bad.items():
            try:
                chart.validate_schema(chart.merge_values(values))
            except helm.HelmValuesError:
                pass
            else:
                accepted.append(name)
        assert accepted == [], f"schema accepted: {accepted}"
        # An install validates against the schema before rendering.
        try:
            chart.render({"replicas": -1}, name=RELEASE, namespace=NAMESPACE)
        except helm.HelmError:
            pass
        else:
            raise AssertionError("render accepted replicas: -1")


def check_copies() -> None:
    for src, dst in ((ROOT / "crds", CHART / "crds"), (EXAMPLES, CHART / "files" / "examples")):
        names = sorted(p.name for p in src.glob("*.yaml"))
        assert names, f"nothing in {src}"
        assert sorted(p.name for p in dst.iterdir()) == names, (
            f"{dst.relative_to(ROOT)} does not list the files of {src.relative_to(ROOT)}; "
            "run python3 tests/chart_test.py --update")
        for n in names:
            assert (src / n).read_bytes() == (dst / n).read_bytes(), (
                f"{dst.relative_to(ROOT)}/{n} differs from {src.relative_to(ROOT)}/{n}; "
                "run python3 tests/chart_test.py --update")
    with helm.Chart.load(str(CHART)) as chart:
        # Helm sees them as the chart's CRDs (installed before the templates, never deleted).
        crds = sorted(c["name"] for c in chart.crds)
        assert crds == sorted(f"crds/{p.name}" for p in (ROOT / "crds").glob("*.yaml")), crds


def check_install_yaml() -> None:
    assert INSTALL.exists(), "manifests/install.yaml is missing; run python3 tests/chart_test.py --update"
    actual = docs_of(INSTALL.read_text())
    expected = [yaml.safe_load(NAMESPACE_DOC)]
    expected += [d for f in sorted((ROOT / "crds").glob("*.yaml")) for d in docs_of(f.read_text())]
    expected += render_docs()
    a, e = by_key(actual), by_key(expected)
    missing, extra = sorted(set(e) - set(a)), sorted(set(a) - set(e))
    changed = sorted(k for k in set(a) & set(e) if a[k] != e[k])
    assert not (missing or extra or changed), (
        f"manifests/install.yaml is stale (missing {missing}, extra {extra}, changed {changed}); "
        "run python3 tests/chart_test.py --update")
    assert len(actual) == 3 + 1 + 8 + 4, len(actual)
    # Namespace and CRDs first, so a single `kubectl apply` works.
    assert [d["kind"] for d in actual[:4]] == ["Namespace"] + ["CustomResourceDefinition"] * 3


# ---------------------------------------------------------------------------------------------
# kube-test


class KubeTest:
    """target/debug/kube-test on a free loopback port, with a kubeconfig in a temp dir."""

    name = "kube-test"

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.kubeconfig = tmp / "kubeconfig"
        self.proc = subprocess.Popen(
            [str(KUBE_TEST), "--port", "0", "--kubeconfig", str(self.kubeconfig)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # the URL, once it listens
        if not line.startswith("http") or not self.kubeconfig.exists():
            self.stop()
            raise AssertionError(f"kube-test did not start (said {line!r})")
        self.url = line

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        r = subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}): "
                                 f"{r.stdout}{r.stderr}")
        return r.stdout

    def token_kubeconfig(self, token: str) -> Path:
        """A kubeconfig for this server that authenticates with `token`."""
        path = self.tmp / "token-kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "kt", "cluster": {"server": self.url}}],
            "users": [{"name": "landlord", "user": {"token": token}}],
            "contexts": [{"name": "kt", "context": {"cluster": "kt", "user": "landlord"}}],
            "current-context": "kt",
        }))
        return path

    def install(self) -> Path:
        """The install YAML to apply here: manifests/install.yaml as it is."""
        return INSTALL

    def stop(self) -> None:
        stop_process(self.proc)


class RealCluster(KubeTest):
    """The cluster in KUBECONFIG (the real control plane of ../shared/k8s in `make test`).

    It is shared: checks name only their own objects, and `stop` deletes what the chart and
    its examples created there, CRDs excepted (other suites use them)."""

    name = "the real control plane"

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.kubeconfig = Path(os.environ["KUBECONFIG"])

    def token_kubeconfig(self, token: str) -> Path:
        config = yaml.safe_load(self.kubectl("config", "view", "--raw", "--minify", "--flatten"))
        config["users"] = [{"name": "landlord", "user": {"token": token}}]
        for context in config["contexts"]:
            context["context"]["user"] = "landlord"
        path = self.tmp / "token-kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def install(self) -> Path:
        """manifests/install.yaml without the admission policies: on a shared cluster they
        would refuse the tenant namespaces' labels to every other test's operator (which is
        not this chart's ServiceAccount) while they are installed. tests/integration/privileges.rs
        installs them there bound to its own objects only."""
        docs = [d for d in docs_of(INSTALL.read_text())
                if not d["kind"].startswith("ValidatingAdmissionPolicy")]
        path = self.tmp / "install-without-policies.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        return path

    def stop(self) -> None:
        self.kubectl("delete", "tenants", *EXAMPLE_TENANTS, "--ignore-not-found", "--wait")
        self.kubectl("delete", "tenantquotas", "free", "pro", "--ignore-not-found")
        # Waits until the namespaces are gone, so that the next check can create them anew.
        self.kubectl("delete", "namespace", *EXAMPLE_NAMESPACES, NAMESPACE,
                     "--ignore-not-found", "--wait", "--timeout=120s", timeout=180)
        # The admission policies too: left behind, they would refuse every other operator
        # (not this chart's ServiceAccount) the labels of the tenant namespaces it creates.
        self.kubectl("delete", "clusterrole,clusterrolebinding,validatingadmissionpolicy,"
                     "validatingadmissionpolicybinding", "-l",
                     "app.kubernetes.io/name=landlord", "--ignore-not-found")


EXAMPLE_TENANTS = ["acme", "globex"]
# The label the integration tests' operators select their tenants by, here with this run's id.
RUN_LABEL = "test.landlord.dev/run"
EXAMPLE_NAMESPACES = ["acme-ci", "acme-prod", "globex-app"]


def server(tmp: Path) -> KubeTest:
    return RealCluster(tmp) if "--cluster" in sys.argv[1:] else KubeTest(tmp)


def cluster_skip_reason(need_landlord: bool = False, real: bool = False) -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    if real and not os.environ.get("KUBECONFIG"):
        return "KUBECONFIG is not set"
    if not real and not KUBE_TEST.exists():
        return f"{KUBE_TEST.relative_to(ROOT)} is missing (cargo build -p kube-test)"
    if need_landlord and not LANDLORD.exists():
        return f"{LANDLORD.relative_to(ROOT)} is missing (cargo build -p landlord)"
    return None


def check_kubectl_apply() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kt = server(Path(tmp))
        try:
            for _ in range(2):  # the second apply must be a conflict-free no-op
                kt.kubectl("apply", "--server-side", "-f", str(kt.install()))
            out = kt.kubectl("get", "deploy", "-n", NAMESPACE, "landlord", "-o", "yaml")
            dep = yaml.safe_load(out)
            assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == \
                "ghcr.io/landlord-dev/landlord:0.1.0"
            kt.kubectl("get", "deploy", "-n", NAMESPACE, "landlord")
            for name in ("tenants", "tenantquotas", "tenantusages"):
                kt.kubectl("get", "crd", f"{name}.landlord.dev")
            for obj in ("serviceaccount/landlord", "service/landlord"):
                kt.kubectl("get", "-n", NAMESPACE, obj)
            kt.kubectl("get", "clusterrole/landlord", "clusterrolebinding/landlord")
            if kt.install() == INSTALL:
                for name in ("landlord-protected-tenants", "landlord-tenant-namespaces"):
                    kt.kubectl("get", f"validatingadmissionpolicy/{name}",
                               f"validatingadmissionpolicybinding/{name}")
            # What the operator's ServiceAccount may do, as the API server's RBAC sees it.
            # (`bind` is what lets it bind tenant owners to admin/view through RBAC's
            # escalation check, so it is asked here directly.)
            sa = f"--as=system:serviceaccount:{NAMESPACE}:landlord"
            access = {
                ("bind", "clusterroles/admin"): "yes",
                ("bind", "clusterroles/view"): "yes",
                ("bind", "clusterroles/edit"): "yes",  # archive.rbac.bindClusterRoles
                ("bind", "clusterroles/cluster-admin"): "no",
                ("escalate", "clusterroles"): "no",
                ("create", "tokenreviews.authentication.k8s.io"): "yes",
                ("update", "leases.coordination.k8s.io", "-n", NAMESPACE): "yes",
                ("delete", "leases.coordination.k8s.io", "-n", NAMESPACE): "no",
                ("patch", "tenants.landlord.dev", "--subresource=status"): "yes",
                ("create", "rolebindings", "-n", "acme-prod"): "yes",
                # Hibernation.
                ("patch", "deployments.apps", "--subresource=scale", "-n", "acme-prod"): "yes",
                ("patch", "cronjobs.batch", "-n", "acme-prod"): "yes",
                # The archive key Secret, in the operator's namespace: read, created, never
                # changed or deleted.
                ("get", "secrets/landlord-archive-key", "-n", NAMESPACE): "yes",
                ("create", "secrets", "-n", NAMESPACE): "yes",
                ("update", "secrets/landlord-archive-key", "-n", NAMESPACE): "no",
                ("delete", "secrets/landlord-archive-key", "-n", NAMESPACE): "no",
                # Archiving lists, and restoring applies, every kind in every namespace ...
                ("list", "secrets", "-A"): "yes",
                ("list", "widgets.example.com", "-n", "acme-prod"): "yes",
                ("create", "pods", "-n", "acme-prod"): "yes",
                ("patch", "deployments.apps", "-n", "acme-prod"): "yes",
                ("escalate", "roles", "-n", "acme-prod"): "yes",
                ("bind", "roles", "-n", "acme-prod"): "yes",
                # ... but never updates, deletes or watches what it does not manage.
                ("update", "configmaps", "-n", "acme-prod"): "no",
                ("delete", "pods", "-n", "acme-prod"): "no",
                ("deletecollection", "secrets", "-n", "acme-prod"): "no",
                ("watch", "secrets", "-A"): "no",
                ("delete", "deployments.apps", "-n", NAMESPACE): "no",
            }
            got = {q: kt.kubectl("auth", "can-i", *q, sa, check=False).strip() for q in access}
            assert got == access, {q: a for q, a in got.items() if a != access[q]}
            # The chart's examples are valid against the installed CRDs.
            examples = "\n---\n".join(
                t for p, t in render({"examples": {"enabled": True}}).items() if "examples" in p)
            ex = Path(tmp) / "examples.yaml"
            ex.write_text(examples)
            kt.kubectl("apply", "--server-side", "-f", str(ex))
            names = kt.kubectl("get", "tenants", *EXAMPLE_TENANTS, "-o", "name").split()
            assert names == ["tenant.landlord.dev/acme", "tenant.landlord.dev/globex"], names
        finally:
            kt.stop()


def check_operator_with_chart_rbac() -> None:
    """The landlord binary, as the chart's ServiceAccount, provisions the example tenants, and
    deletes a tenant with the default deletionPolicy, archiving it first."""
    # On a shared cluster the operator takes only this run's tenants, as the integration
    # tests' operators do.
    run = f"chart-{os.getpid()}"
    archive_tenant = f"{run}-archive"
    with tempfile.TemporaryDirectory() as tmp:
        kt = server(Path(tmp))
        operator = None
        try:
            kt.kubectl("apply", "--server-side", "-f", str(kt.install()))
            token = kt.kubectl("create", "token", "landlord", "-n", NAMESPACE).strip()
            assert token, "no token"
            sa_config = kt.token_kubeconfig(token)
            log = open(Path(tmp) / "operator.log", "w")
            # As in the chart's pod: POD_NAMESPACE (where the archive key Secret goes) is the
            # release namespace; the archives go to a directory of the test's own.
            archives = Path(tmp) / "archives"
            env = dict(os.environ, KUBECONFIG=str(sa_config), POD_NAME="landlord-test",
                       POD_NAMESPACE=NAMESPACE, RUST_LOG="info", NO_COLOR="1")
            operator = subprocess.Popen(
                [str(LANDLORD), "run", "--metrics-addr=127.0.0.1:0", "--engine-addr=127.0.0.1:0",
                 "--resync=5s", f"--archive-url=file://{archives}",
                 f"--tenant-selector={RUN_LABEL}={run}"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
            kt.kubectl("apply", "--server-side", "-f", str(EXAMPLES))
            kt.kubectl("label", "tenants", *EXAMPLE_TENANTS, f"{RUN_LABEL}={run}", "--overwrite")
            deadline = time.monotonic() + 120  # for a loaded machine; a pass returns at once
            ready: dict[str, str] = {}
            while time.monotonic() < deadline:
                out = yaml.safe_load(kt.kubectl("get", "tenants", *EXAMPLE_TENANTS, "-o", "yaml"))
                ready = {
                    t["metadata"]["name"]: next(
                        (c["status"] for c in t.get("status", {}).get("conditions", [])
                         if c["type"] == "Ready"), "-")
                    for t in out["items"]
                }
                if ready == {"acme": "True", "globex": "True"}:
                    break
                if operator.poll() is not None:
                    break
                time.sleep(0.3)
            log.flush()
            if ready != {"acme": "True", "globex": "True"}:
                tail = (Path(tmp) / "operator.log").read_text()[-3000:]
                raise AssertionError(f"tenants not Ready with the chart's RBAC: {ready}\n{tail}")
            ns = kt.kubectl("get", "ns", "-l", "landlord.dev/tenant in (acme,globex)",
                            "-o", "name").split()
            assert sorted(ns) == [f"namespace/{n}" for n in EXAMPLE_NAMESPACES], ns
            rb = kt.kubectl("get", "rolebinding", "-n", "acme-prod", "landlord-owners-admin", "-o",
                            "yaml")
            assert yaml.safe_load(rb)["roleRef"]["name"] == "admin"
            delete_archives_tenant(kt, operator, archive_tenant, run, archives, Path(tmp))
            # Nothing in the operator's log says it was forbidden.
            text = (Path(tmp) / "operator.log").read_text()
            assert "forbidden" not in text.lower(), text[-3000:]
        finally:
            kt.stop()  # on a real cluster it deletes the tenants, so the operator runs still
            if operator is not None:
                stop_process(operator)
            if isinstance(kt, RealCluster):
                forget_tenant(kt, archive_tenant)


def delete_archives_tenant(kt: KubeTest, operator: subprocess.Popen, tenant: str, run: str,
                           archives: Path, tmp: Path) -> None:
    """A tenant with one namespace holding a ConfigMap is deleted with the default
    deletionPolicy (Archive): the operator archives first (discovery, then a LIST of every
    namespaced kind in the namespace, and the key Secret in its own namespace), then deletes
    the namespace and lets the Tenant go. The archive is in the operator's --archive-url."""
    namespace = f"{tenant}-data"
    manifest = tmp / "archive-tenant.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": tenant, "labels": {RUN_LABEL: run}},
        "spec": {"quotaRef": "free", "namespaces": [{"name": "data"}]},
    }))
    kt.kubectl("apply", "--server-side", "-f", str(manifest))

    def log_tail() -> str:
        return (tmp / "operator.log").read_text()[-3000:]

    deadline = time.monotonic() + 120
    while not kt.kubectl("get", "ns", namespace, "--ignore-not-found", "-o", "name").strip():
        assert time.monotonic() < deadline and operator.poll() is None, (
            f"namespace {namespace} not created\n{log_tail()}")
        time.sleep(0.3)
    kt.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=color=blue")
    kt.kubectl("delete", "tenant", tenant, "--wait=false")
    deadline = time.monotonic() + 120  # for a loaded machine; a pass returns at once
    while kt.kubectl("get", "tenant", tenant, "--ignore-not-found", "-o", "name").strip():
        if time.monotonic() > deadline or operator.poll() is not None:
            status = kt.kubectl("get", "tenant", tenant, "-o", "jsonpath={.status.conditions}",
                                check=False)
            raise AssertionError(f"Tenant {tenant} not gone after its deletion with the chart's "
                                 f"RBAC; conditions: {status}\n{log_tail()}")
        time.sleep(0.3)
    sealed = sorted((archives / tenant).glob("*.llarch"))
    assert len(sealed) == 1, (sorted(archives.rglob("*")), log_tail())
    assert sealed[0].read_bytes().startswith(b"LLARCH"), sealed[0]
    listed = json.loads(sealed[0].with_name(
        sealed[0].name.removesuffix(".llarch") + ".manifest.json").read_text())
    assert listed["tenant"] == tenant, listed
    assert {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace,
            "name": "settings"}.items() <= next(
        (o for o in listed["objects"] if o["kind"] == "ConfigMap"), {}).items(), listed["objects"]
    # The key that sealed it is in the release namespace, as the chart's pod would have it.
    key = yaml.safe_load(kt.kubectl("get", "secret", "-n", NAMESPACE, "landlord-archive-key",
                                    "-o", "yaml"))
    assert key["data"]["current"], key["data"]


def forget_tenant(kt: KubeTest, tenant: str) -> None:
    """On the shared cluster, a Tenant left behind by a failed check goes, finalizer and all."""
    if kt.kubectl("get", "tenant", tenant, "--ignore-not-found", "-o", "name").strip():
        kt.kubectl("patch", "tenant", tenant, "--type=merge", "-p",
                   '{"metadata":{"finalizers":null}}', check=False)
        kt.kubectl("delete", "tenant", tenant, "--ignore-not-found", "--wait=false", check=False)
    kt.kubectl("delete", "namespace", f"{tenant}-data", "--ignore-not-found", "--wait=false",
               check=False)


# ---------------------------------------------------------------------------------------------


def main() -> int:
    if "--update" in sys.argv[1:]:
        update()
    if "--cluster" in sys.argv[1:]:
        return run_checks([
            ("6 kubectl apply --server-side manifests/install.yaml to the cluster in KUBECONFIG",
             check_kubectl_apply, cluster_skip_reason(real=True)),
            ("7 the operator runs with the chart's RBAC, provisions tenants there and archives "
             "one it deletes",
             check_operator_with_chart_rbac, cluster_skip_reason(need_landlord=True, real=True)),
        ])
    return run_checks([
        ("1 helm lint: no errors, no warnings", check_lint, None),
        ("2 default render: objects, Deployment, RBAC, labels", check_default_render, None),
        ("2b render with non-default values", check_values_render, None),
        ("2c archive store: env, volume, claim, S3 credentials, key Secret Role",
         check_archive_render, None),
        ("3 values schema", check_schema, None),
        ("4 chart crds/ and examples are byte-identical copies", check_copies, None),
        ("5 manifests/install.yaml is the default render + Namespace + CRDs", check_install_yaml,
         None),
        ("6 kubectl apply --server-side manifests/install.yaml to kube-test", check_kubectl_apply,
         cluster_skip_reason()),
        ("7 the operator runs with the chart's RBAC, provisions tenants and archives one it "
         "deletes",
         check_operator_with_chart_rbac, cluster_skip_reason(need_landlord=True)),
    ])



if __name__ == "__main__":
    sys.exit(main())
