"""What Grafana does with a dashboard's queries, for the tests: the dashboards and the
generator that writes them, every query of every panel, and template variables
substituted the way Grafana's Prometheus datasource substitutes them."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "docs" / "grafana"
DASHBOARD_FILES = ("gpu-monitor-node.json", "gpu-monitor-fleet.json")
RECORDING_RULES = ROOT / "docs" / "prometheus-recording-rules.yml"
# Grafana's variable syntax: $name, [[name:format]], ${name.field:format}
# (public/app/features/variables/utils.ts, variableRegex).
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
# Built-in variables and what Grafana would put there for this test's Prometheus
# (scrape interval 1 s, a time range of 5 minutes).
BUILT_INS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}


def generator() -> ModuleType:
    """docs/grafana/generate.py, the source of the JSON files."""
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / name).read_text())
    return loaded


@dataclass(frozen=True)
class Query:
    """One target of one panel."""

    dashboard: str
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}: {self.expr}"


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels of collapsed rows included."""
    for item in dashboard["panels"]:
        yield item
        yield from item.get("panels", [])


def queries(name: str) -> list[Query]:
    return [
        Query(name, item["title"], target["refId"], target["expr"])
        for item in panels(load(name))
        for target in item.get("targets", [])
    ]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def regular_escape(value: str) -> str:
    """prometheusRegularEscape (packages/grafana-prometheus/src/escaping.ts): a single
    value of a variable without multi or All."""
    return value.replace("'", "\\\\'")


def regex_escape(value: str) -> str:
    """prometheusSpecialRegexEscape: each value of a multi-value or All variable. In the
    PromQL string each special character gets two backslashes: the regex sees one."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


ALL = object()  # the variable's "All" option


def interpolate(text: str, definitions: dict[str, dict[str, Any]], chosen: dict[str, Any]) -> str:
    """``text`` with ``$variables`` replaced as Grafana's Prometheus datasource does
    (interpolateQueryExpr): ``chosen`` maps a name to a value, a list of values or ALL.
    A name that is no variable (``$1`` of label_replace) is left as it is, as Grafana does."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name in BUILT_INS:
            return BUILT_INS[name]
        if name not in definitions:
            return match.group(0)
        definition, value = definitions[name], chosen[name]
        if value is ALL:
            return str(definition["allValue"])
        if not definition.get("multi") and not definition.get("includeAll"):
            return regular_escape(value)
        values = [value] if isinstance(value, str) else value
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return VARIABLE.sub(value_of, text)


def variable_names(text: str) -> set[str]:
    """The names of the variables ``text`` uses (built-ins and ``$1`` excluded)."""
    found = set()
    for match in VARIABLE.finditer(text):
        name = match.group(1) or match.group(2) or match.group(4)
        if not name.startswith("__") and not name.isdigit():
            found.add(name)
    return found


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def query_result_text(series: dict[str, Any]) -> str:
    """One option of a ``query_result()`` variable, as Grafana writes it before its regex
    (metric_find_query.ts: name{label="value",...} value timestamp_ms)."""
    labels = dict(series["metric"])
    name = labels.pop("__name__", "")
    pairs = ",".join(f'{key}="{value}"' for key, value in labels.items())
    timestamp, value = series["value"]
    return f"{name}{{{pairs}}} {value} {int(timestamp * 1000)}"


def variable_regex(definition: dict[str, Any]) -> re.Pattern[str]:
    """A variable's /regex/ in Python's syntax (named groups ``(?P<name>``)."""
    source = definition["regex"]
    assert source.startswith("/") and source.endswith("/"), source
    return re.compile(source[1:-1].replace("(?<", "(?P<"))
