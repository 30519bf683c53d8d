#!/usr/bin/env python3
"""Tests of Landlord's Prometheus alerts (charts/landlord/files/alerts.yaml, the spec of the
chart's optional PrometheusRule).

    python3 tests/alerts_test.py

The rules file is a Helm template (thresholds and the release's selector come from values),
so every check renders it through the chart with the real Helm library first, and tests what
a release would install. promtool comes from Debian's `prometheus` package: the one on PATH,
or else the binary unpacked from the package into target/ops-tools/ (no service installed).

Checks:
  1. Every metric family the tests know is still registered in src/ under that name.
  2. The render with prometheusRule.enabled: the PrometheusRule, its labels, exactly the five
     alerts, each naming only metrics and labels the operator exports; `promtool check
     rules` accepts it.
  3. `promtool test rules tests/alerts/*.yaml`: each alert fires, with its exact labels and
     annotations, and does not fire below its threshold, before its `for`, or for another
     release's series.
  4. Non-default thresholds and selector reach the expressions; promtool accepts them too.
  5. A running operator (target/debug/landlord on kube-test, with the example tenants)
     exposes every family with its type and labels. Skipped, with the reason printed, when
     kubectl or the binaries are missing.

The last line of output is `N passed, N failed`; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from testenv import debian_binary, ensure_venv, run_checks, stop_process  # noqa: E402

ensure_venv()

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import helm_python as helm  # noqa: E402
import yaml  # noqa: E402

import ops_metrics  # noqa: E402

CHART = ROOT / "charts" / "landlord"
TESTS = ROOT / "tests" / "alerts"
KUBE_TEST = ROOT / "target" / "debug" / "kube-test"
LANDLORD = ROOT / "target" / "debug" / "landlord"
RELEASE, NAMESPACE = "landlord", "landlord-system"
RULES_FILE = "landlord-alerts.yaml"  # the name tests/alerts/*.yaml load
ALERTS = {
    "LandlordTenantQuotaNearLimit": "warning",
    "LandlordTenantDenials": "warning",
    "LandlordReconcileErrors": "warning",
    "LandlordUsageFlushLag": "warning",
    "LandlordNoLeader": "critical",
}


def promtool() -> str:
    return shutil.which("promtool") or str(debian_binary("usr/bin/promtool", "prometheus"))


def rendered_rule(values: dict | None = None) -> dict:
    """The PrometheusRule the chart renders with prometheusRule.enabled and `values`."""
    merged = {"prometheusRule": {"enabled": True}}
    for k, v in (values or {}).items():
        merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) else v
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(merged, name=RELEASE, namespace=NAMESPACE)
    docs = [d for p, t in out.items() if not p.endswith("NOTES.txt")
            for d in yaml.safe_load_all(t) if d]
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    return rule


def alert_rules(rule: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def run(*args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=120)
    assert r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
    return r.stdout + r.stderr


def write_rules(rule: dict, directory: Path) -> Path:
    path = directory / RULES_FILE
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def check_source() -> None:
    ops_metrics.check_source()


def check_render() -> None:
    rule = rendered_rule({"prometheusRule": {"labels": {"release": "prom"}}})
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    meta = rule["metadata"]
    assert (meta["name"], meta["namespace"]) == ("landlord", NAMESPACE), meta
    assert meta["labels"]["release"] == "prom"
    assert meta["labels"]["app.kubernetes.io/name"] == "landlord"
    alerts = alert_rules(rule)
    assert sorted(alerts) == sorted(ALERTS), sorted(alerts)
    problems = []
    for name, r in alerts.items():
        assert r["labels"]["severity"] == ALERTS[name], (name, r["labels"])
        assert {"summary", "description"} <= set(r["annotations"]), name
        problems += ops_metrics.check_names(r["expr"], name)
        # Every operator series is selected by this release's job and namespace.
        for metric, selectors in ops_metrics.metrics_in(r["expr"]).items():
            if metric.startswith("landlord_"):
                for labels in selectors:
                    assert {"job", "namespace"} <= labels, (name, metric, labels)
    assert not problems, "\n".join(problems)
    # No Helm syntax left over.
    text = yaml.safe_dump(rule["spec"])
    assert "$t." not in text and "$sel" not in text and "{{-" not in text, text
    with tempfile.TemporaryDirectory() as tmp:
        out = run(promtool(), "check", "rules", str(write_rules(rule, Path(tmp))))
        assert f"SUCCESS: {len(ALERTS)} rules found" in out, out


def check_promtool_tests() -> None:
    tests = sorted(TESTS.glob("*.yaml"))
    assert tests, f"no tests in {TESTS.relative_to(ROOT)}"
    with tempfile.TemporaryDirectory() as tmp:
        write_rules(rendered_rule(), Path(tmp))
        for t in tests:
            shutil.copyfile(t, Path(tmp) / t.name)
        out = run(promtool(), "test", "rules", *[t.name for t in tests], cwd=Path(tmp))
        assert "SUCCESS" in out and "FAILED" not in out, out
    # Every alert has a test that expects it to fire.
    fired = set()
    for t in tests:
        for case in yaml.safe_load(t.read_text())["tests"]:
            for a in case.get("alert_rule_test", []):
                if a.get("exp_alerts"):
                    fired.add(a["alertname"])
    assert fired == set(ALERTS), f"alerts without a firing test: {sorted(set(ALERTS) - fired)}"


def check_values() -> None:
    rule = rendered_rule({"prometheusRule": {
        "selector": 'job="ops-landlord"',
        "thresholds": {"quotaUtilizationPercent": 90, "quotaUtilizationFor": "15m",
                       "denialsPerSecond": 0.25, "denialsFor": "1h", "reconcileErrors": 3,
                       "reconcileErrorsFor": "30m", "flushLagSeconds": 900,
                       "noLeaderFor": "2m"}}})
    alerts = alert_rules(rule)
    quota, denials = alerts["LandlordTenantQuotaNearLimit"], alerts["LandlordTenantDenials"]
    errors, lag = alerts["LandlordReconcileErrors"], alerts["LandlordUsageFlushLag"]
    leader = alerts["LandlordNoLeader"]
    assert quota["expr"].rstrip().endswith("> 90"), quota["expr"]
    assert quota["for"] == "15m"
    assert "(threshold 90%)" in quota["annotations"]["description"]
    assert denials["expr"].rstrip().endswith("> 0.25") and denials["for"] == "1h", denials
    assert 'landlord_quota_decisions_total{job="ops-landlord", result="denied"}' in denials["expr"]
    assert errors["expr"].rstrip().endswith("> 3") and errors["for"] == "30m", errors
    assert lag["expr"].rstrip().endswith("> 900"), lag["expr"]
    assert leader["for"] == "2m"
    assert 'landlord_leader{job="ops-landlord"}' in leader["expr"], leader["expr"]
    # Another release name and namespace give another default selector and log command.
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render({"prometheusRule": {"enabled": True}}, name="tenancy",
                           namespace="ops")
    [doc] = [d for p, t in out.items() if not p.endswith("NOTES.txt")
             for d in yaml.safe_load_all(t) if d and d["kind"] == "PrometheusRule"]
    alerts = alert_rules(doc)
    assert 'job="tenancy-landlord",namespace="ops"' in alerts["LandlordNoLeader"]["expr"]
    assert "kubectl -n ops logs deploy/tenancy-landlord" in \
        alerts["LandlordReconcileErrors"]["annotations"]["description"]
    with tempfile.TemporaryDirectory() as tmp:
        out = run(promtool(), "check", "rules", str(write_rules(rule, Path(tmp))))
        assert "SUCCESS" in out, out
    # The schema refuses what promtool would.
    with helm.Chart.load(str(CHART)) as chart:
        for bad in ({"quotaUtilizationPercent": "high"}, {"denialsFor": "10 minutes"},
                    {"flushLagSeconds": 0}, {"unknown": 1}):
            try:
                chart.validate_schema(chart.merge_values(
                    {"prometheusRule": {"enabled": True, "thresholds": bad}}))
            except helm.HelmValuesError:
                pass
            else:
                raise AssertionError(f"schema accepted prometheusRule.thresholds {bad}")


# ---------------------------------------------------------------------------------------------
# The running operator


def live_skip_reason() -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    for binary in (KUBE_TEST, LANDLORD):
        if not binary.exists():
            return f"{binary.relative_to(ROOT)} is missing (cargo build)"
    return None


def parse_exposition(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(family -> type from # TYPE lines, series name -> label names seen)."""
    types, labels = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            types[family] = kind
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
            assert m, line
            names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m[3] or ""))
            labels.setdefault(m[1], set()).update(names)
    return types, labels


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

            def kubectl(*args: str) -> None:
                run("kubectl", "--kubeconfig", str(kubeconfig), *args)

            kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
            kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "examples"))
            log_path = Path(tmp) / "operator.log"
            env = dict(os.environ, KUBECONFIG=str(kubeconfig), RUST_LOG="info", NO_COLOR="1")
            with open(log_path, "w") as log:
                operator = subprocess.Popen(
                    [str(LANDLORD), "run", "--metrics-addr=127.0.0.1:0",
                     "--engine-addr=127.0.0.1:0", "--resync=5s"],
                    stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + 120  # a loaded machine; a pass returns at once
            port, types, labels = None, {}, {}
            want = set(ops_metrics.exposed())
            while time.monotonic() < deadline and operator.poll() is None:
                if port is None:
                    plain = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text())
                    m = re.search(r"metrics listening addr=127\.0\.0\.1:(\d+)", plain)
                    port = m and m[1]
                if port is not None:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                timeout=5) as r:
                        types, labels = parse_exposition(r.read().decode())
                    # Every family has samples once the example tenants are reconciled and
                    # metered, but reconcile errors, which need an error.
                    if want - {"landlord_reconcile_errors_total"} <= set(labels):
                        break
                time.sleep(0.3)
            # A family without samples is not exposed at all (prometheus-client), so
            # landlord_reconcile_errors shows only after an error; check 1 finds it in src/.
            expected_types = {f: k for f, (k, _) in ops_metrics.OPERATOR.items()
                              if f != "landlord_reconcile_errors" or f in types}
            got_types = {f: k for f, k in types.items() if f.startswith("landlord_")}
            assert got_types == expected_types, (
                f"the operator's families differ from tests/ops_metrics.py: "
                f"got {got_types}, listed {expected_types}\n{log_path.read_text()[-2000:]}")
            exposed = ops_metrics.exposed()
            missing = sorted(want - {"landlord_reconcile_errors_total"} - set(labels))
            assert not missing, f"no samples of {missing}"
            wrong = {n: sorted(ls) for n, ls in labels.items()
                     if n.startswith("landlord_") and (n not in exposed or ls != exposed[n])}
            assert not wrong, f"series whose labels differ from tests/ops_metrics.py: {wrong}"
        finally:
            if operator is not None:
                stop_process(operator)
            stop_process(server)


def main() -> int:
    checks = [
        ("1 the metrics the tests know are registered in src/", check_source, None),
        ("2 PrometheusRule render, metric names, promtool check rules", check_render, None),
        ("3 promtool test rules tests/alerts/", check_promtool_tests, None),
        ("4 thresholds and selector from values", check_values, None),
        ("5 a running operator exports those metrics", check_live, live_skip_reason()),
    ]
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
