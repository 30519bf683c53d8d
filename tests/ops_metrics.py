"""The metrics Landlord exports, and the PromQL helpers the alert and dashboard tests share.

OPERATOR lists every metric family the operator registers (src/metrics.rs, and the quota
engine's collector in src/engine/metrics.rs), with its type and labels, as the README
documents them. `check_source()` proves each is still registered under that name in src/;
alerts_test.py also scrapes a running operator and compares. Alerts and dashboards may name
only these and Prometheus's own `up` (EXTERNAL).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# family -> (type, labels). Exposed names: counters get `_total`, histograms `_bucket`
# (with `le`), `_sum` and `_count`.
OPERATOR = {
    "landlord_reconciles": ("counter", {"outcome"}),
    "landlord_reconcile_errors": ("counter", {"error"}),
    "landlord_reconcile_duration_seconds": ("histogram", {"outcome"}),
    "landlord_tenants": ("gauge", {"phase"}),
    "landlord_usage_last_flush_timestamp_seconds": ("gauge", set()),
    "landlord_kube_requests": ("counter", {"verb", "resource"}),
    "landlord_quota_decisions": ("counter", {"tenant", "dimension", "result"}),
    "landlord_quota_period_units": ("gauge", {"tenant", "dimension"}),
    "landlord_tenant_quota_utilization_ratio": ("gauge", {"tenant", "resource"}),
    "landlord_tenant_cost": ("gauge", {"tenant", "currency"}),
    "landlord_leader": ("gauge", set()),
}

# Not Landlord's: Prometheus's own.
EXTERNAL = {
    "up": set(),
}

# Labels Prometheus adds to every scraped series (ServiceMonitor and pod targets).
TARGET_LABELS = {"job", "namespace", "instance", "pod", "service", "endpoint", "container"}


def exposed() -> dict[str, set[str]]:
    """Every series name the operator exposes -> the labels it may carry."""
    out: dict[str, set[str]] = {}
    for family, (kind, labels) in OPERATOR.items():
        if kind == "counter":
            out[f"{family}_total"] = labels
        elif kind == "histogram":
            out[f"{family}_bucket"] = labels | {"le"}
            out[f"{family}_sum"] = labels
            out[f"{family}_count"] = labels
        else:
            out[family] = labels
    return out


def allowed() -> dict[str, set[str]]:
    """Every metric name an alert or a panel may use -> its labels (target labels included)."""
    return {name: labels | TARGET_LABELS for name, labels in {**exposed(), **EXTERNAL}.items()}


def check_source() -> None:
    """Each family of OPERATOR is registered under its name somewhere in src/."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "src").rglob("*.rs")))
    registered = set(re.findall(
        r'(?:register|encode_descriptor)\(\s*"(landlord_[a-z0-9_]+)"', text))
    missing = sorted(set(OPERATOR) - registered)
    assert not missing, (f"tests/ops_metrics.py lists {missing}, which src/ no longer "
                         f"registers (it registers {sorted(registered)})")


# ---------------------------------------------------------------------------------------------
# PromQL

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan", "start", "end"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
IDENT = re.compile(r"(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")


def metrics_in(expr: str) -> dict[str, list[set[str]]]:
    """Metric name -> the label names each of its selectors matches on, in a PromQL expression.

    Enough PromQL for our own rules and panels: selectors with or without braces, functions,
    aggregations with by/without, vector matching, ranges and subqueries, strings, numbers."""
    found: dict[str, list[set[str]]] = {}
    # Selectors with braces first (their matchers hold strings, which go next).
    def selector(m: re.Match) -> str:
        name, body = m[1], m[2]
        labels = set()
        rest = STRING.sub('""', body)
        for lm in MATCHER.finditer(body):
            labels.add(lm[1])
        if not re.fullmatch(r'(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*""\s*,?)*\s*', rest):
            raise AssertionError(f"cannot read the matchers {{{body}}} in {expr!r}")
        if "__name__" in labels:
            raise AssertionError(f"__name__ matchers are not checked; name the metric: {expr!r}")
        if name is None:
            raise AssertionError(f"a selector without a metric name in {expr!r}")
        found.setdefault(name, []).append(labels)
        return " "
    text = SELECTOR.sub(selector, expr)
    text = STRING.sub(" ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)      # ranges and subqueries
    text = GROUPING.sub(" ", text)
    for m in IDENT.finditer(text):
        name = m[1]
        if name.lower() in KEYWORDS:
            continue
        found.setdefault(name, []).append(set())
    return found


def check_names(expr: str, where: str) -> list[str]:
    """What is wrong with the metric and label names of `expr` (empty: nothing)."""
    ok = allowed()
    problems = []
    for name, selectors in metrics_in(expr).items():
        if name not in ok:
            problems.append(f"{where}: {name} is not a metric Landlord exports "
                            f"(nor one of {sorted(EXTERNAL)})")
            continue
        for labels in selectors:
            unknown = sorted(labels - ok[name])
            if unknown:
                problems.append(f"{where}: {name} has no label {', '.join(unknown)}")
    return problems
