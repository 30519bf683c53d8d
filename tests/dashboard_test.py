#!/usr/bin/env python3
"""Tests of Landlord's Grafana dashboard (charts/landlord/files/dashboards/landlord.json).

    python3 tests/dashboard_test.py

Checks:
  1. The JSON parses and is a dashboard Grafana provisions: uid, title, schemaVersion, a
     Prometheus data-source variable every query uses, unique panel ids, a grid position and
     queries on every panel.
  2. Every query (panels and variables) names only metrics and labels the operator exports
     (tests/ops_metrics.py, checked against src/ by tests/alerts_test.py).
  3. Every query is valid PromQL: promtool checks them all as recording rules, with Grafana's
     variables replaced.
  4. It shows what it is for: tenants by phase, utilization per tenant, engine decisions and
     denials, billable usage, cost per tenant, and the leader.
(The chart's ConfigMap that carries it is checked by tests/chart_test.py.)

The last line of output is `N passed, N failed`; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from testenv import debian_binary, run_checks  # noqa: E402

import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import ops_metrics  # noqa: E402

DASHBOARD = ROOT / "charts" / "landlord" / "files" / "dashboards" / "landlord.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's variables, replaced by what they stand for when all are selected.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             "$tenant": ".*", "$job": ".*", "$namespace": ".*"}


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out += p.get("panels", [])  # collapsed rows hold their panels
    return out


def queries(dash: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable."""
    out = []
    for p in panels(dash):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", q)
            assert m, f"variable {v['name']}: not a label_values() query: {q}"
            out.append((f"variable {v['name']}", m[1]))
    return out


def substitute(expr: str) -> str:
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    assert "$" not in re.sub(r'"[^"]*\$\d[^"]*"', "", expr), f"unknown variable in {expr}"
    return expr


def check_structure() -> None:
    dash = load()
    assert dash["uid"] == "landlord" and dash["title"] == "Landlord", (dash["uid"], dash["title"])
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 30
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == DS, v["name"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for p in panels(dash):
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and g["x"] + g["w"] <= 24, (p["title"], g)
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS and t["expr"].strip(), (p["title"], t)
    # No two panels overlap.
    cells = {}
    for p in panels(dash):
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def check_names() -> None:
    problems = []
    for where, expr in queries(load()):
        problems += ops_metrics.check_names(substitute(expr), where)
    assert not problems, "\n".join(problems)


def promtool() -> str:
    return shutil.which("promtool") or str(debian_binary("usr/bin/promtool", "prometheus"))


def check_promql() -> None:
    qs = queries(load())
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": substitute(e)} for i, (_, e) in enumerate(qs)]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard-queries.yaml"
        path.write_text(json.dumps(rules))  # JSON is YAML
        r = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                           text=True, timeout=60)
    if r.returncode != 0:
        # Name the panel of each refused query.
        out = r.stdout + r.stderr
        for i, (where, expr) in reversed(list(enumerate(qs))):  # query_12 before query_1
            out = out.replace(f"dashboard:query_{i}", f"{where} ({expr})")
        raise AssertionError(f"promtool refused queries:\n{out}")
    assert f"SUCCESS: {len(qs)} rules found" in r.stdout, r.stdout


def check_coverage() -> None:
    dash = load()
    by_title = {p["title"]: " ".join(t["expr"] for t in p.get("targets", []))
                for p in panels(dash)}
    wanted = {
        "Tenants by phase": ["landlord_tenants", "by (phase)"],
        "Quota utilization": ["landlord_tenant_quota_utilization_ratio",
                              "by (tenant, resource)"],
        "Quota utilization now": ["landlord_tenant_quota_utilization_ratio",
                                  "by (tenant, resource)"],
        "Cost this period": ["landlord_tenant_cost", "by (tenant, currency)"],
        "Leading replicas": ["landlord_leader"],
        "Decisions / s by result": ["landlord_quota_decisions_total", "by (result)"],
        "Denials / s by tenant and dimension": ['result="denied"', "by (tenant, dimension)"],
        "Billable units this month": ["landlord_quota_period_units", "by (tenant, dimension)"],
    }
    for title, needles in wanted.items():
        assert title in by_title, f"no panel {title!r}"
        for n in needles:
            assert n in by_title[title], f"panel {title!r} does not use {n}"
    # Every operator metric the dashboard could use appears somewhere.
    used = set()
    for _, e in queries(dash):
        used |= set(ops_metrics.metrics_in(substitute(e)))
    unused = sorted(set(ops_metrics.exposed()) - used - {
        "landlord_reconcile_duration_seconds_sum", "landlord_reconcile_duration_seconds_count"})
    assert not unused, f"metrics no panel shows: {unused}"


def main() -> int:
    checks = [
        ("1 the dashboard JSON and its structure", check_structure),
        ("2 queries name only exported metrics and labels", check_names),
        ("3 queries are valid PromQL (promtool)", check_promql),
        ("4 tenants by phase, utilization, decisions, denials, usage, cost, leader",
         check_coverage),
    ]
    return run_checks([(name, fn, None) for name, fn in checks])


if __name__ == "__main__":
    sys.exit(main())
