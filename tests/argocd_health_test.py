#!/usr/bin/env python3
"""Tests of the Argo CD health checks (charts/landlord/files/argocd/*.lua) and the Argo CD
example (manifests/examples/argocd/).

    python3 tests/argocd_health_test.py            # run every check
    python3 tests/argocd_health_test.py --update   # first regenerate
                                                   # manifests/examples/argocd/argocd-cm-patch.yaml

Argo CD runs health checks with gopher-lua, which is Lua 5.1; these tests run them with the
real Lua 5.1 interpreter (Debian's `lua5.1`, installed with apt-get when missing), the object
as the global `obj`, in an environment holding only Lua's base functions and the string,
table and math libraries (what Argo CD gives a health script), and compare the returned
{status, message} exactly.

Checks:
  1. Tenant: a sample object for every phase, stale and missing status, each failure reason.
  2. TenantQuota: no status, tenant counts, conditions.
  3. argocd-cm-patch.yaml carries exactly the two scripts under the documented keys.
  4. The Application example: two Applications (operator before tenants), server-side apply,
     no cascade on the tenants; the tenants directory: every plan in an earlier sync wave
     than every tenant, every quotaRef names a plan there.
  5. On kube-test with the operator running: the example plans and tenants, as Landlord
     really writes their status, are Progressing before it runs, then Healthy, Suspended
     when suspended and Degraded with the reason when their plan is missing. Skipped, with
     the reason printed, when kubectl or target/debug/{kube-test,landlord} are missing.

The last line of output is `N passed, N failed`; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from testenv import ensure_apt_tool, ensure_venv, run_checks, stop_process  # noqa: E402

ensure_venv()

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

ARGOCD = ROOT / "charts" / "landlord" / "files" / "argocd"
TENANT_LUA = ARGOCD / "tenant-health.lua"
PLAN_LUA = ARGOCD / "tenantquota-health.lua"
EXAMPLE = ROOT / "manifests" / "examples" / "argocd"
PATCH = EXAMPLE / "argocd-cm-patch.yaml"
KUBE_TEST = ROOT / "target" / "debug" / "kube-test"
LANDLORD = ROOT / "target" / "debug" / "landlord"
KEYS = {
    "resource.customizations.health.landlord.dev_Tenant": TENANT_LUA,
    "resource.customizations.health.landlord.dev_TenantQuota": PLAN_LUA,
}
PATCH_HEADER = """\
# Landlord's Argo CD health checks, as argocd-cm entries. Merge them into Argo CD's ConfigMap:
#
#   kubectl -n argocd patch configmap argocd-cm --patch-file manifests/examples/argocd/argocd-cm-patch.yaml
#
# (with the argo-cd Helm chart, put the same keys under configs.cm). Generated from
# charts/landlord/files/argocd/*.lua by `python3 tests/argocd_health_test.py --update`;
# do not edit (a test checks it).
"""

LUA = ensure_apt_tool("lua5.1", "lua5.1")


# ---------------------------------------------------------------------------------------------
# Running a health script


def lua_literal(value) -> str:
    """A Python value decoded from JSON as a Lua 5.1 table constructor or literal."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '\\"':
                out.append("\\" + ch)
            elif ord(ch) < 32 or ord(ch) == 127:
                out.append(f"\\{ord(ch):03d}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}"
                               for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


HARNESS = r"""
-- What Argo CD gives a health script: base functions, string, table, math; the object as obj.
local function sandbox(o)
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring, type = type,
    unpack = unpack, string = string, table = table, math = math,
  }
  env._G = env
  env.obj = o
  return env
end

local function quote(s)
  s = tostring(s)
  return (s:gsub("\\", "\\\\"):gsub("\t", "\\t"):gsub("\n", "\\n"))
end

local function run(path, o)
  local chunk, err = loadfile(path)
  if chunk == nil then
    io.write("ERROR\t", quote(err), "\n")
    return
  end
  setfenv(chunk, sandbox(o))
  local ok, hs = pcall(chunk)
  if not ok then
    io.write("ERROR\t", quote(hs), "\n")
  elseif type(hs) ~= "table" then
    io.write("ERROR\t", "returned ", type(hs), " instead of a table\n")
  else
    io.write(quote(hs.status), "\t", quote(hs.message), "\n")
  end
end
"""


def health(script: Path, objects: list[dict]) -> list[tuple[str, str]]:
    """(status, message) of `script` for each object, in one run of lua5.1."""
    calls = "\n".join(f"run({lua_literal(str(script))}, {lua_literal(o)})" for o in objects)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(HARNESS + calls + "\n")
        f.flush()
        r = subprocess.run([LUA, f.name], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"lua5.1 failed ({r.returncode}): {r.stderr}"
    lines = r.stdout.splitlines()
    assert len(lines) == len(objects), r.stdout
    out = []
    for line in lines:
        status, message = line.split("\t", 1)
        out.append((unquote(status), unquote(message)))
    return out


def unquote(text: str) -> str:
    """The inverse of the harness's quote(): \\\\, \\t and \\n back to their characters."""
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n"}.get(m[1], m[1]), text)


def check_cases(script: Path, cases: list[tuple[str, dict, str, str]]) -> None:
    got = health(script, [obj for _, obj, _, _ in cases])
    wrong = [f"{name}: got {g}, want {(status, message)}"
             for (name, _, status, message), g in zip(cases, got) if g != (status, message)]
    assert not wrong, "\n  " + "\n  ".join(wrong)


# ---------------------------------------------------------------------------------------------
# Sample objects


READY_MESSAGE = "all namespaces, quotas, policies and bindings are in place"
PLAN_NOT_FOUND = ("TenantQuota pro does not exist; create it or change spec.quotaRef. "
                  "Nothing was changed.")
CONFLICT = ("namespace(s) acme-prod exist and do not belong to this tenant; rename them in "
            "spec.namespaces or remove the existing namespaces")
NOT_SUPPORTED = ("state Hibernated is not implemented by this version of Landlord; the tenant "
                 "stays provisioned as Active")


def cond(type_: str, status: str, reason: str, message: str, generation: int | None = 3) -> dict:
    c = {"type": type_, "status": status, "reason": reason, "message": message,
         "lastTransitionTime": "2026-11-29T10:00:00Z"}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def ready(status: str = "True", reason: str = "Ready", message: str = READY_MESSAGE,
          generation: int | None = 3) -> dict:
    return cond("Ready", status, reason, message, generation)


HEALTHY_CONDITIONS = [
    ready(),
    cond("Provisioned", "True", "Provisioned", "2 namespace(s) provisioned"),
    cond("QuotaHealthy", "True", "WithinQuota", "usage is within the plan"),
    cond("NetworkIsolated", "True", "Strict",
         "ingress only from the tenant's namespaces and allowFrom"),
]


def tenant(phase: str | None = "Active", conditions: list | None = None, generation: int | None = 3,
           observed: int | None = 3, status: bool = True, **extra) -> dict:
    obj = {
        "apiVersion": "landlord.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "acme", "uid": "4c3b", "resourceVersion": "812"},
        "spec": {"displayName": "ACME Corporation", "quotaRef": "pro",
                 "namespaces": [{"name": "prod"}, {"name": "ci"}]},
    }
    if generation is not None:
        obj["metadata"]["generation"] = generation
    if status:
        s = {"phase": phase, "observedGeneration": observed,
             "conditions": HEALTHY_CONDITIONS if conditions is None else conditions,
             "namespaces": ["acme-ci", "acme-prod"], "namespaceCount": 2,
             "cpuUtilization": 12, "memoryUtilization": 30, **extra}
        obj["status"] = {k: v for k, v in s.items() if v is not None}
    return obj


def check_tenant() -> None:
    suspended = [ready(reason="Ready")] + HEALTHY_CONDITIONS[1:]
    check_cases(TENANT_LUA, [
        ("no status yet", tenant(status=False), "Progressing",
         "Waiting for Landlord to report the tenant's status"),
        ("status without a phase", tenant(phase=None, conditions=[]), "Progressing",
         "Waiting for Landlord to report the tenant's status"),
        ("Pending", tenant("Pending", conditions=[]), "Progressing", "Tenant is Pending"),
        ("Pending, Ready Unknown", tenant("Pending", conditions=[
            ready("Unknown", "Reconciling", "")]), "Progressing", "Tenant is Pending"),
        ("Pending, plan missing", tenant("Pending", conditions=[
            ready("False", "PlanNotFound", PLAN_NOT_FOUND)]), "Degraded",
         f"PlanNotFound: {PLAN_NOT_FOUND}"),
        ("Provisioning", tenant("Provisioning", conditions=[
            ready("False", "Provisioning", "creating 2 namespaces")]), "Progressing",
         "Tenant is Provisioning"),
        ("Active and Ready", tenant(), "Healthy", READY_MESSAGE),
        ("Active, Ready without a message", tenant(conditions=[ready(message="")]), "Healthy",
         "Tenant is Active"),
        ("Active, over quota and isolation Open still Healthy", tenant(conditions=[
            ready(),
            cond("QuotaHealthy", "False", "OverQuota",
                 "usage of pods is above the plan; nothing new can start until it falls"),
            cond("NetworkIsolated", "False", "IsolationOpen",
                 "isolation.network is Open: no network policies")]), "Healthy", READY_MESSAGE),
        ("Active, no Ready condition yet", tenant(conditions=[]), "Progressing",
         "Waiting for the Ready condition"),
        ("Active, Ready Unknown with a reason", tenant(conditions=[
            ready("Unknown", "Reconciling", "waiting for the caches")]), "Progressing",
         "Reconciling: waiting for the caches"),
        ("Active, state not supported", tenant(conditions=[
            ready("False", "StateNotSupported", NOT_SUPPORTED)]), "Degraded",
         f"StateNotSupported: {NOT_SUPPORTED}"),
        ("Active, Ready False with a reason only", tenant(conditions=[
            ready("False", "PlanNotFound", "")]), "Degraded", "PlanNotFound"),
        ("Active, Ready False with nothing said", tenant(conditions=[
            ready("False", "", "")]), "Degraded", "Ready is False"),
        ("stale: status of an older generation", tenant(generation=4), "Progressing",
         "Waiting for Landlord to observe generation 4 (status is of generation 3)"),
        ("stale: no observedGeneration", tenant(observed=None), "Progressing",
         "Waiting for Landlord to observe generation 3 (status is of generation none)"),
        ("stale: the Ready condition is of an older generation", tenant(conditions=[
            ready(generation=2)]), "Progressing",
         "Waiting for Landlord to observe generation 3 (status is of generation 2)"),
        ("stale wins over Failed", tenant("Failed", generation=5, conditions=[
            ready("False", "NamespaceConflict", CONFLICT)]), "Progressing",
         "Waiting for Landlord to observe generation 5 (status is of generation 3)"),
        ("no metadata.generation: never stale", tenant(generation=None, observed=None),
         "Healthy", READY_MESSAGE),
        ("Failed, namespace conflict", tenant("Failed", conditions=[
            ready("False", "NamespaceConflict", CONFLICT),
            cond("Provisioned", "False", "NamespaceConflict", CONFLICT)]), "Degraded",
         f"NamespaceConflict: {CONFLICT}"),
        ("Failed, the reason on another condition", tenant("Failed", conditions=[
            ready("Unknown", "", ""),
            cond("Provisioned", "False", "ArchiveFailed", "the archive store refused the bundle")]),
         "Degraded", "ArchiveFailed: the archive store refused the bundle"),
        ("Failed, no conditions", tenant("Failed", conditions=[]), "Degraded", "Tenant is Failed"),
        ("Suspended", tenant("Suspended", conditions=suspended), "Suspended",
         "Tenant is Suspended"),
        ("Suspended, plan missing", tenant("Suspended", conditions=[
            ready("False", "PlanNotFound", PLAN_NOT_FOUND)]), "Degraded",
         f"PlanNotFound: {PLAN_NOT_FOUND}"),
        ("Hibernated", tenant("Hibernated", conditions=[
            ready("False", "Hibernated", "workloads scaled to zero")]), "Suspended",
         "Tenant is Hibernated"),
        ("Archived", tenant("Archived", conditions=[
            ready("False", "Archived", "namespaces archived")]), "Suspended", "Tenant is Archived"),
        ("Archiving", tenant("Archiving", conditions=[
            ready("False", "Archiving", "exporting")]), "Progressing", "Tenant is Archiving"),
        ("Restoring", tenant("Restoring", conditions=[ready("Unknown", "Restoring", "")]),
         "Progressing", "Tenant is Restoring"),
        ("Migrating with progress", tenant("Migrating", migration={
            "phase": "Copying", "totalItems": 50, "completedItems": 20, "percentage": 40,
            "startedAt": "2026-11-29T10:00:00Z"}), "Progressing",
         "Tenant is Migrating: 40% (20 of 50 objects)"),
        ("Migrating, percentage only", tenant("Migrating", migration={"percentage": 5}),
         "Progressing", "Tenant is Migrating: 5%"),
        ("Migrating, fractional percentage", tenant("Migrating", migration={
            "percentage": 12.5, "totalItems": 8, "completedItems": 1}), "Progressing",
         "Tenant is Migrating: 12.5% (1 of 8 objects)"),
        ("Migrating, no progress yet", tenant("Migrating"), "Progressing", "Tenant is Migrating"),
        ("Terminating", tenant("Terminating"), "Progressing", "Tenant is Terminating"),
        ("an unknown phase", tenant("Exploding"), "Unknown", "Unknown phase Exploding"),
    ])


def plan(status: dict | None = None, generation: int = 2) -> dict:
    obj = {"apiVersion": "landlord.dev/v1alpha1", "kind": "TenantQuota",
           "metadata": {"name": "pro", "generation": generation},
           "spec": {"maxNamespaces": 5, "hard": {"pods": 50}}}
    if status is not None:
        obj["status"] = status
    return obj


def check_plan() -> None:
    check_cases(PLAN_LUA, [
        ("no status yet", plan(), "Healthy", "Plan accepted"),
        ("no tenants", plan({"tenants": 0, "observedGeneration": 2}), "Healthy",
         "Used by 0 tenants"),
        ("one tenant", plan({"tenants": 1, "observedGeneration": 2}), "Healthy",
         "Used by 1 tenant"),
        ("generation behind is not waited for", plan({"tenants": 7, "observedGeneration": 1},
                                                     generation=3), "Healthy",
         "Used by 7 tenants"),
        ("conditions all True", plan({"tenants": 2, "conditions": [
            cond("Ready", "True", "Valid", "ok")]}), "Healthy", "Used by 2 tenants"),
        ("Ready False", plan({"tenants": 2, "conditions": [
            cond("Ready", "False", "InvalidPricing", "price item 2 names no dimension")]}),
         "Degraded", "InvalidPricing: price item 2 names no dimension"),
        ("Ready False wins over another False", plan({"conditions": [
            cond("Valid", "False", "Other", "x"),
            cond("Ready", "False", "InvalidPricing", "y")]}), "Degraded", "InvalidPricing: y"),
        ("another condition False", plan({"conditions": [
            cond("Ready", "True", "Valid", "ok"),
            cond("PricingValid", "False", "UnknownCurrency", "currency XYZ is unknown")]}),
         "Degraded", "UnknownCurrency: currency XYZ is unknown"),
        ("False with nothing said", plan({"conditions": [{"type": "Ready", "status": "False"}]}),
         "Degraded", "Ready is False"),
    ])


# ---------------------------------------------------------------------------------------------
# Files


def patch_text() -> str:
    lines = [PATCH_HEADER, "data:\n"]
    for key, path in KEYS.items():
        lines.append(f"  {key}: |\n")
        for line in path.read_text().splitlines():
            lines.append(f"    {line}\n" if line else "\n")
    return "".join(lines)


def update() -> None:
    PATCH.write_text(patch_text())
    print(f"updated {PATCH.relative_to(ROOT)}")


def check_patch() -> None:
    assert PATCH.exists(), f"{PATCH.relative_to(ROOT)} is missing; run with --update"
    assert PATCH.read_text() == patch_text(), (
        f"{PATCH.relative_to(ROOT)} differs from the Lua files; run "
        "python3 tests/argocd_health_test.py --update")
    data = yaml.safe_load(PATCH.read_text())["data"]
    assert {k: v for k, v in data.items()} == {k: p.read_text() for k, p in KEYS.items()}


def sync_wave(doc: dict) -> int:
    return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def check_example() -> None:
    apps = [d for d in yaml.safe_load_all((EXAMPLE / "applications.yaml").read_text()) if d]
    assert [(a["apiVersion"], a["kind"]) for a in apps] == [("argoproj.io/v1alpha1",
                                                             "Application")] * 2
    by_name = {a["metadata"]["name"]: a for a in apps}
    operator, tenants = by_name["landlord"], by_name["landlord-tenants"]
    assert sync_wave(operator) < sync_wave(tenants), "the operator must sync before the tenants"
    for app in apps:
        path = app["spec"]["source"]["path"]
        assert (ROOT / path).is_dir(), f"{app['metadata']['name']}: no folder {path}"
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert operator["spec"]["source"]["path"] == "charts/landlord"
    assert operator["spec"]["destination"]["namespace"] == "landlord-system"
    # Deleting the tenants' Application must not cascade to the Tenants, nor git removals.
    assert "finalizers" not in tenants["metadata"], tenants["metadata"]
    assert tenants["spec"]["syncPolicy"]["automated"]["prune"] is False
    # The operator's Helm values are valid for the chart (its schema refuses unknown keys).
    values = operator["spec"]["source"]["helm"]["valuesObject"]
    import helm_python as helm
    with helm.Chart.load(str(ROOT / "charts" / "landlord")) as chart:
        chart.validate_schema(chart.merge_values(values))

    docs = []
    for f in sorted((ROOT / tenants["spec"]["source"]["path"]).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    plans = [d for d in docs if d["kind"] == "TenantQuota"]
    tns = [d for d in docs if d["kind"] == "Tenant"]
    assert plans and tns and len(plans) + len(tns) == len(docs), [d["kind"] for d in docs]
    assert max(map(sync_wave, plans)) < min(map(sync_wave, tns)), "plans must sync before tenants"
    names = {p["metadata"]["name"] for p in plans}
    for t in tns:
        assert t["spec"].get("quotaRef") in names, t["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# kube-test and the operator


def live_skip_reason() -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    for binary in (KUBE_TEST, LANDLORD):
        if not binary.exists():
            return f"{binary.relative_to(ROOT)} is missing (cargo build)"
    return None


def check_live() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        server = subprocess.Popen([str(KUBE_TEST), "--port", "0", "--kubeconfig", str(kubeconfig)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        operator = None
        try:
            assert server.stdout is not None
            line = server.stdout.readline().strip()
            assert line.startswith("http") and kubeconfig.exists(), f"kube-test said {line!r}"

            def kubectl(*args: str) -> str:
                r = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args],
                                   capture_output=True, text=True, timeout=60)
                assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stdout}{r.stderr}"
                return r.stdout

            def items(kind: str) -> list[dict]:
                return sorted(json.loads(kubectl("get", kind, "-o", "json"))["items"],
                              key=lambda o: o["metadata"]["name"])

            def wait_for(kind: str, script: Path, want: list[tuple[str, str | None]]) -> None:
                """Until every object's health is as wanted (a message of None: any)."""
                deadline = time.monotonic() + 120  # a loaded machine; a pass returns at once
                got = None
                while time.monotonic() < deadline:
                    got = health(script, items(kind))
                    if len(got) == len(want) and all(
                            g[0] == w[0] and w[1] in (None, g[1]) for g, w in zip(got, want)):
                        return
                    if operator is not None and operator.poll() is not None:
                        break
                    time.sleep(0.3)
                log = (Path(tmp) / "operator.log")
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise AssertionError(f"{kind}: got {got}, want {want}\n{tail}")

            kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
            kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            kubectl("apply", "--server-side", "-f", str(EXAMPLE / "tenants"))
            waiting = ("Progressing", "Waiting for Landlord to report the tenant's status")
            wait_for("tenants", TENANT_LUA, [waiting, waiting])
            wait_for("tenantquotas", PLAN_LUA, [("Healthy", "Plan accepted")])

            log = open(Path(tmp) / "operator.log", "w")
            env = dict(os.environ, KUBECONFIG=str(kubeconfig), RUST_LOG="info", NO_COLOR="1")
            operator = subprocess.Popen(
                [str(LANDLORD), "run", "--metrics-addr=127.0.0.1:0", "--engine-addr=127.0.0.1:0",
                 "--resync=5s"], stdout=log, stderr=subprocess.STDOUT, env=env)
            healthy = ("Healthy", READY_MESSAGE)
            wait_for("tenants", TENANT_LUA, [healthy, healthy])
            # The plan's message is not compared: the operator writes plan tenant counts only
            # when it runs with --tenant-selector (a bug, reported), and it runs here as the
            # chart runs it. The counts' messages are covered by check 2.
            wait_for("tenantquotas", PLAN_LUA, [("Healthy", None)])

            kubectl("patch", "tenant", "search", "--type=merge", "-p",
                    '{"spec": {"state": "Suspended"}}')
            kubectl("patch", "tenant", "payments", "--type=merge", "-p",
                    '{"spec": {"quotaRef": "missing"}}')
            missing = ("TenantQuota missing does not exist; create it or change spec.quotaRef. "
                       "Nothing was changed.")
            wait_for("tenants", TENANT_LUA, [("Degraded", f"PlanNotFound: {missing}"),
                                             ("Suspended", "Tenant is Suspended")])
        finally:
            if operator is not None:
                stop_process(operator)
            stop_process(server)


# ---------------------------------------------------------------------------------------------


def main() -> int:
    if "--update" in sys.argv[1:]:
        update()
    checks = [
        ("1 Tenant health for every phase", check_tenant, None),
        ("2 TenantQuota health", check_plan, None),
        ("3 argocd-cm-patch.yaml holds the scripts", check_patch, None),
        ("4 Application example and sync waves", check_example, None),
        ("5 health of what the operator writes, on kube-test", check_live, live_skip_reason()),
    ]
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
