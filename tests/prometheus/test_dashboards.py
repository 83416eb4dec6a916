"""The Grafana dashboards and recording rules checked without a Prometheus: the JSON is
the generator's output, panels have unique ids and do not overlap, every variable used is
defined, the datasource is only the variable, every panel has a unit; promtool finds the
rules clean and the health rule knows every sign of failing hardware."""

from __future__ import annotations

import re
import shutil
import subprocess
from itertools import combinations
from typing import Any

import pytest
import yaml

from gpu_monitor import rules
from tests.prometheus.grafana import (
    DASHBOARD_FILES,
    GRAFANA,
    RECORDING_RULES,
    ROOT,
    generator,
    load,
    panels,
    queries,
    strings,
    variable_names,
    variables,
)

# Grafana unit ids the dashboards may use (public/app/core/utils/valueFormats, "categories").
UNITS = {"percentunit", "bytes", "celsius", "watt", "hertz", "kwatth", "cps", "none"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_json_is_the_generators_output(name: str) -> None:
    assert (GRAFANA / name).read_text() == generator().render(name), (
        "run: python docs/grafana/generate.py"
    )


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_panel_ids_are_unique(name: str) -> None:
    ids = [item["id"] for item in panels(load(name))]

    assert len(ids) == len(set(ids))


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_panels_do_not_overlap_and_fit_the_grid(name: str) -> None:
    placed = [(item["title"], item["gridPos"]) for item in panels(load(name))]

    assert [
        (first, second) for (first, a), (second, b) in combinations(placed, 2) if overlap(a, b)
    ] == []
    assert all(pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 for _, pos in placed)


def test_overlap_is_detected() -> None:
    """The check above can fail: two panels sharing one cell overlap, neighbours do not."""
    a = {"x": 0, "y": 0, "w": 12, "h": 8}
    assert overlap(a, {"x": 11, "y": 7, "w": 2, "h": 2})
    assert not overlap(a, {"x": 12, "y": 0, "w": 12, "h": 8})
    assert not overlap(a, {"x": 0, "y": 8, "w": 24, "h": 1})


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_variable_used_is_defined(name: str) -> None:
    dashboard = load(name)
    used = set().union(*(variable_names(text) for text in strings(dashboard)))

    assert used <= set(variables(dashboard)), used - set(variables(dashboard))
    assert {"datasource", "job", "instance"} <= used


def test_an_undefined_variable_is_found() -> None:
    assert variable_names('up{job="$job", x="${nope:regex}", y="[[old]]", z="$1"}') == {
        "job",
        "nope",
        "old",
    }
    assert variable_names("rate(x[$__rate_interval]) ${__data.fields.gpu}") == set()


def datasources(value: Any) -> list[Any]:
    """Every value of a "datasource" key in a JSON document."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource":
                found.append(item)
            found.extend(datasources(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(datasources(item))
    return found


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_datasource_only_through_the_variable(name: str) -> None:
    dashboard = load(name)
    datasource = variables(dashboard)["datasource"]

    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    assert all(found == DATASOURCE for found in datasources(dashboard))
    for item in panels(dashboard):
        if item["type"] != "row":
            assert item["datasource"] == DATASOURCE, item["title"]
            assert all(t["datasource"] == DATASOURCE for t in item["targets"]), item["title"]
    assert "__inputs" not in dashboard  # nothing to pick at import: the variable does it


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_panel_has_a_unit(name: str) -> None:
    for item in panels(load(name)):
        if item["type"] == "row":
            continue
        assert item["fieldConfig"]["defaults"]["unit"] in UNITS, item["title"]
        for override in item["fieldConfig"]["overrides"]:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    assert prop["value"] in UNITS, item["title"]


def test_node_dashboard_has_the_rows_of_the_issue() -> None:
    rows = [
        item["title"] for item in panels(load("gpu-monitor-node.json")) if item["type"] == "row"
    ]

    assert rows == [
        "Health at a glance",
        "Utilisation",
        "Memory",
        "Temperature and power",
        "Clocks",
        "Clock event reasons",
        "ECC and row remapping",
        "MIG",
        "Per-user GPU memory",
        "XID errors and GPUs held idle",
    ]


def test_the_critical_xids_are_the_alert_rules() -> None:
    """The XID panels name as critical the codes GPUXidError calls critical."""
    alerts = yaml.safe_load((ROOT / "docs" / "prometheus-alerts.yml").read_text())
    critical = next(
        rule["expr"]
        for group in alerts["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "GPUXidError" and rule["labels"]["severity"] == "critical"
    )
    codes = re.search(r'xid=~"([\d|]+)"', critical)
    assert codes
    described = [
        item["description"]
        for name in DASHBOARD_FILES
        for item in panels(load(name))
        if item["title"] == "XID errors, last 24 h" and "critical" in item["description"]
    ]

    assert described
    for text in described:
        named = re.search(r"; ([\d, and]+) are critical", text)
        assert named, text
        assert re.findall(r"\d+", named.group(1)) == codes.group(1).split("|")


def test_fleet_table_links_each_row_to_the_node_dashboard() -> None:
    node = load("gpu-monitor-node.json")
    table = next(p for p in panels(load("gpu-monitor-fleet.json")) if p["type"] == "table")
    links = [
        link["url"]
        for override in table["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]

    assert len(links) == 2
    for url in links:
        assert url.startswith(f"/d/{node['uid']}/")
        assert set(re.findall(r"var-(\w+)=", url)) == set(variables(node))
        assert set(re.findall(r"__data\.fields\.(\w+)", url)) == {"job", "instance", "gpu"}


def test_recording_rules_are_clean() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (scripts/test does)"

    result = subprocess.run(
        [promtool, "check", "rules", str(RECORDING_RULES)],
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.decode().splitlines() if line.strip()]
    assert lines == [f"Checking {RECORDING_RULES}", "SUCCESS: 21 rules found"]  # no lint
    assert result.stderr == b""


def recorded() -> dict[str, str]:
    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    return {rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_health_rule_knows_every_sign_of_failing_hardware() -> None:
    """gpu_monitor.rules is the one definition: the health recording rule checks each of
    its problem kinds (and a lost GPU), with its list of hardware slowdowns."""
    health = recorded()["gpu:gpu_monitor_health:max"]
    checks = set(re.findall(r'"check", "(\w+)"', health))
    slowdowns = "|".join(rules.HARDWARE_SLOWDOWNS)

    assert checks == {*rules.PROBLEM_KINDS, "lost"}
    assert f'reason=~"{slowdowns}"' in health
    assert f'reason=~"{slowdowns}"' in (ROOT / "docs" / "prometheus-alerts.yml").read_text()
    node_queries = [q.expr for q in queries("gpu-monitor-node.json")]
    assert any(f'reason=~"{slowdowns}"' in expr for expr in node_queries)


def test_fleet_dashboard_reads_the_recording_rules() -> None:
    """The fleet totals and the table's health come from the rules, not from raw series."""
    used = {
        name
        for q in queries("gpu-monitor-fleet.json")
        for name in re.findall(r"\w+:\w+:\w+", q.expr)
    }

    assert used <= set(recorded())
    assert {"job:gpu_monitor_gpus:sum", "gpu:gpu_monitor_health:max"} <= used
