"""Writes the two Grafana dashboards of this folder: ``python docs/grafana/generate.py``.

The JSON files are what users import; this script is where they are edited, so that the
layout (grid positions, panel ids), the datasource and the label filters are written
once. tests/prometheus/ checks that the files are this script's output, and runs every
query of both against a real Prometheus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_UID = "gpu-monitor-node"
FLEET_UID = "gpu-monitor-fleet"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24
# Label filters of each dashboard's queries.
NODE = 'job="$job", instance="$instance", gpu=~"$gpu"'
NODE_HOST = 'job="$job", instance="$instance"'
FLEET = 'job=~"$job", instance=~"$instance"'
GPU_LEGEND = "{{gpu}} {{name}}"
# The gpu variable shows "name #index (UUID prefix)": PromQL builds a "display" label and
# the variable's regex takes the option's text from it and its value from "gpu".
GPU_OPTIONS = (
    "query_result(label_join(label_replace(label_replace("
    f"gpu_monitor_device_available{{{NODE_HOST}}}, "
    '"gpu_label", "#$1", "gpu", "(.*)"), "uuid_label", "($1)", "uuid", "(.{1,12}).*"), '
    '"display", " ", "name", "gpu_label", "uuid_label"))'
)
GPU_OPTIONS_REGEX = '/display="(?<text>[^"]*)".*[{,]gpu="(?<value>[^"]*)"/'
HEALTH_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "OK", "color": "green", "index": 0},
            "1": {"text": "Warning", "color": "orange", "index": 1},
            "2": {"text": "Critical", "color": "red", "index": 2},
        },
    }
]


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    """A Prometheus query of a panel."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "range": not extra.get("instant", False),
        **extra,
    }


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


GREEN = thresholds((None, "green"))
BAD_FROM_1 = thresholds((None, "green"), (1, "red"))
HIGH_90 = thresholds((None, "green"), (0.9, "orange"))
HOT_80 = thresholds((None, "green"), (80, "orange"))


def panel(
    kind: str,
    title: str,
    targets: list[dict[str, Any]],
    unit: str,
    *,
    size: tuple[int, int] = (12, 8),
    description: str = "",
    defaults: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A panel; its id and gridPos are given by ``Layout``."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": GREEN, **(defaults or {})},
            "overrides": overrides or [],
        },
        "options": options or {},
        "_size": size,
        **extra,
    }


def stat(title: str, expr: str, unit: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("size", (4, 4))
    kw.setdefault("options", {"colorMode": "background", "graphMode": "none", "textMode": "value"})
    return panel("stat", title, [target(expr, instant=True)], unit, **kw)


def series(title: str, targets: list[dict[str, Any]], unit: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("options", {"legend": {"displayMode": "table", "placement": "right"}})
    return panel("timeseries", title, targets, unit, **kw)


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


class Layout:
    """Places panels left to right, wrapping at 24 columns; a row starts a new line."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.line_height = 0

    def add(self, *panels: dict[str, Any]) -> None:
        for item in panels:
            w, h = item.pop("_size")
            if item["type"] == "row" or self.x + w > WIDTH:
                self.x, self.y, self.line_height = 0, self.y + self.line_height, 0
            item["id"] = len(self.panels) + 1
            item["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
            self.panels.append(item)
            self.x += w
            self.line_height = max(self.line_height, h)


def variable_datasource() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


def variable_query(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    regex: str = "",
) -> dict[str, Any]:
    """A Prometheus query variable; ``multi`` also offers All, sent as the regex ``.*``."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "regex": regex,
        "refresh": 2,  # on time range change: GPUs come and go
        "sort": 1,  # alphabetical: "name #index" in index order up to 10 GPUs
        "multi": multi,
        "includeAll": multi,
        **({"allValue": ".*"} if multi else {}),
        "current": {},
        "options": [],
        "hide": 0,
    }


def dashboard(
    uid: str, title: str, description: str, variables: list[dict[str, Any]], layout: Layout
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["gpu", "nvidia", "gpu_monitor"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [
            {
                "title": "gpu_monitor dashboards",
                "type": "dashboards",
                "tags": ["gpu_monitor"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout.panels,
    }


def node_dashboard() -> dict[str, Any]:
    """One server: its GPUs, selected by the gpu variable."""
    layout = Layout()
    layout.add(
        row("Health at a glance"),
        stat(
            "NVML up",
            f"gpu_monitor_up{{{NODE_HOST}}}",
            "none",
            description="0 when the server process cannot use NVML (driver not loaded, "
            "library missing): every other panel is then empty.",
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "Down", "color": "red", "index": 0},
                            "1": {"text": "Up", "color": "green", "index": 1},
                        },
                    }
                ],
                "thresholds": thresholds((None, "red"), (1, "green")),
            },
        ),
        stat(
            "GPUs lost",
            f"sum(1 - gpu_monitor_device_available{{{NODE}}})",
            "none",
            description="GPUs NVML cannot query (for example 'GPU is lost', XID 79).",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "Uncorrected ECC errors",
            f'sum(gpu_monitor_ecc_errors_total{{{NODE}, type="uncorrected", scope="volatile"}})',
            "none",
            description="Since the driver loaded: drain the jobs and check the GPU.",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "Row remap pending or failed",
            f"sum(gpu_monitor_remapped_rows_pending{{{NODE}}})"
            f" + sum(gpu_monitor_remapped_rows_failed{{{NODE}}})",
            "none",
            description="A pending remap is applied at the next GPU reset; a failed one "
            "needs service.",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "Hardware slowdown active",
            "count(max by (gpu) (gpu_monitor_clocks_event_reason_active"
            f'{{{NODE}, reason=~"hw_slowdown|hw_thermal_slowdown|hw_power_brake_slowdown"}})'
            " == 1) or vector(0)",
            "none",
            description="GPUs whose clocks the hardware holds down (HW slowdown, HW "
            "thermal slowdown or HW power brake): check cooling and power.",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "Energy used in range",
            f"sum(increase(gpu_monitor_energy_joules_total{{{NODE}}}[$__range])) / 3600000",
            "kwatth",
            description="Of the selected GPUs over the dashboard's time range "
            "(nvmlDeviceGetTotalEnergyConsumption).",
            defaults={"decimals": 2},
        ),
        row("Utilisation"),
        panel(
            "bargauge",
            "Utilisation now",
            [target(f"gpu_monitor_utilization_ratio{{{NODE}}}", GPU_LEGEND, instant=True)],
            "percentunit",
            size=(8, 8),
            description="None on a MIG-enabled GPU: NVML reports no utilisation there.",
            defaults={"min": 0, "max": 1, "thresholds": HIGH_90},
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        series(
            "GPU utilisation",
            [target(f"gpu_monitor_utilization_ratio{{{NODE}}}", GPU_LEGEND)],
            "percentunit",
            size=(8, 8),
            defaults={"min": 0, "max": 1},
        ),
        series(
            "Memory controller utilisation",
            [target(f"gpu_monitor_memory_utilization_ratio{{{NODE}}}", GPU_LEGEND)],
            "percentunit",
            size=(8, 8),
            defaults={"min": 0, "max": 1},
        ),
        row("Memory"),
        panel(
            "bargauge",
            "Memory used now",
            [
                target(
                    f"gpu_monitor_memory_used_bytes{{{NODE}}}"
                    f" / gpu_monitor_memory_total_bytes{{{NODE}}}",
                    GPU_LEGEND,
                    instant=True,
                )
            ],
            "percentunit",
            size=(8, 8),
            defaults={"min": 0, "max": 1, "thresholds": HIGH_90},
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        series(
            "Memory used and total",
            [
                target(f"gpu_monitor_memory_used_bytes{{{NODE}}}", "{{gpu}} used", "A"),
                target(f"gpu_monitor_memory_total_bytes{{{NODE}}}", "{{gpu}} total", "B"),
            ],
            "bytes",
            size=(16, 8),
            defaults={"min": 0},
            overrides=[dashed("B")],
        ),
        row("Temperature and power"),
        series(
            "Temperature",
            [target(f"gpu_monitor_temperature_celsius{{{NODE}}}", GPU_LEGEND)],
            "celsius",
            defaults={"thresholds": HOT_80},
        ),
        series(
            "Power draw and limit",
            [
                target(f"gpu_monitor_power_draw_watts{{{NODE}}}", "{{gpu}} draw", "A"),
                target(f"gpu_monitor_power_limit_watts{{{NODE}}}", "{{gpu}} limit", "B"),
            ],
            "watt",
            defaults={"min": 0},
            overrides=[dashed("B")],
        ),
        row("Clocks"),
        series(
            "SM clock and maximum",
            [
                target(f"gpu_monitor_sm_clock_hertz{{{NODE}}}", "{{gpu}} SM", "A"),
                target(f"gpu_monitor_sm_clock_max_hertz{{{NODE}}}", "{{gpu}} max", "B"),
            ],
            "hertz",
            size=(8, 8),
            defaults={"min": 0},
            overrides=[dashed("B")],
        ),
        series(
            "Memory clock and maximum",
            [
                target(f"gpu_monitor_memory_clock_hertz{{{NODE}}}", "{{gpu}} memory", "A"),
                target(f"gpu_monitor_memory_clock_max_hertz{{{NODE}}}", "{{gpu}} max", "B"),
            ],
            "hertz",
            size=(8, 8),
            defaults={"min": 0},
            overrides=[dashed("B")],
        ),
        panel(
            "state-timeline",
            "Performance state",
            [target(f"gpu_monitor_performance_state{{{NODE}}}", "GPU {{gpu}}")],
            "none",
            size=(8, 8),
            description="P0 is the maximum performance state, P15 the minimum.",
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            str(state): {"text": f"P{state}", "index": state} for state in range(16)
                        },
                    }
                ],
                "color": {"mode": "continuous-GrYlRd"},
            },
        ),
        row("Clock event reasons"),
        panel(
            "state-timeline",
            "Clock event reasons",
            [
                target(
                    f"gpu_monitor_clocks_event_reason_active{{{NODE}}}",
                    "GPU {{gpu}} {{reason}}",
                )
            ],
            "none",
            size=(24, 10),
            description="Why the clocks are below their maximum (nvidia-smi "
            "clocks_event_reasons.*). hw_* reasons mean a hardware problem; gpu_idle and "
            "sw_power_cap are normal operation.",
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "inactive", "color": "transparent", "index": 0},
                            "1": {"text": "active", "color": "orange", "index": 1},
                        },
                    }
                ],
                "color": {"mode": "thresholds"},
            },
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        row("ECC and row remapping"),
        series(
            "ECC errors per second (volatile)",
            [
                target(
                    "rate(gpu_monitor_ecc_errors_total"
                    f'{{{NODE}, scope="volatile"}}[$__rate_interval])',
                    "{{gpu}} {{type}}",
                )
            ],
            "cps",
            defaults={"min": 0},
            description="Corrected errors are absorbed by ECC; any uncorrected one needs "
            "attention.",
        ),
        series(
            "Remapped rows",
            [target(f"gpu_monitor_remapped_rows_total{{{NODE}}}", "{{gpu}} {{type}}")],
            "none",
            defaults={"min": 0, "decimals": 0},
            description="Rows remapped after memory errors since manufacture "
            "(nvidia-smi remapped_rows.*).",
        ),
        row("MIG"),
        panel(
            "bargauge",
            "MIG memory used per GPU instance",
            [
                target(
                    "max by (gpu, gpu_instance_id) "
                    f"(gpu_monitor_mig_memory_used_bytes{{{NODE}}}) / "
                    "max by (gpu, gpu_instance_id) "
                    f"(gpu_monitor_mig_memory_total_bytes{{{NODE}}})",
                    "GPU {{gpu}} GI {{gpu_instance_id}}",
                    instant=True,
                )
            ],
            "percentunit",
            size=(8, 8),
            description="Memory belongs to a GPU instance: its compute instances share it.",
            defaults={"min": 0, "max": 1, "thresholds": HIGH_90},
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        series(
            "MIG memory used per slice",
            [
                target(
                    f"gpu_monitor_mig_memory_used_bytes{{{NODE}}}",
                    "GPU {{gpu}} GI {{gpu_instance_id}} CI {{compute_instance_id}}",
                )
            ],
            "bytes",
            size=(16, 8),
            defaults={"min": 0},
        ),
        row("Per-user GPU memory"),
        series(
            "GPU memory per user",
            [
                target(
                    f"sum by (user) (gpu_monitor_user_memory_used_bytes{{{NODE}}})",
                    "{{user}}",
                )
            ],
            "bytes",
            size=(24, 8),
            defaults={"min": 0},
            description="Needs GPU_MONITOR['METRICS_USER_MEMORY'] = True on the server. "
            'A process whose user the host cannot tell counts for user "".',
        ),
        row("XID errors and GPUs held idle"),
        stat(
            "XID errors, last 24 h",
            f"sum(gpu_monitor_xid_errors{{{NODE}}}) or vector(0)",
            "none",
            size=(4, 8),
            description="Recorded by gpu_record (the history sub-app): any XID is a driver "
            f"or hardware fault report; {CRITICAL_XIDS}.",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "GPUs held idle",
            f"sum(gpu_monitor_idle_held_gpus{{{NODE_HOST}}}) or vector(0)",
            "none",
            size=(4, 8),
            description="GPUs that processes hold while they stay idle (utilisation at or "
            "below USAGE_IDLE_PERCENT) for USAGE_IDLE_MINUTES (the usage sub-app, GET "
            "api/gpu/usage/idle).",
            defaults={"thresholds": BAD_FROM_1},
        ),
        series(
            "XID errors per GPU and code, last 24 h",
            [target(f"gpu_monitor_xid_errors{{{NODE}}}", "GPU {{gpu}} XID {{xid}}")],
            "none",
            size=(16, 8),
            defaults={"min": 0, "decimals": 0},
            description="The XID events of the last 24 hours of each GPU and code; GET "
            "api/gpu/events lists them.",
        ),
    )
    return dashboard(
        NODE_UID,
        "GPU monitor: node",
        "The GPUs of one server, from gpu_monitor's api/gpu/metrics.",
        [
            variable_datasource(),
            variable_query("job", "Job", "label_values(gpu_monitor_up, job)"),
            variable_query(
                "instance", "Instance", 'label_values(gpu_monitor_up{job="$job"}, instance)'
            ),
            variable_query("gpu", "GPU", GPU_OPTIONS, multi=True, regex=GPU_OPTIONS_REGEX),
        ],
        layout,
    )


def dashed(ref: str) -> dict[str, Any]:
    """Draw query ``ref`` (a limit or a maximum) as a dashed line."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
        ],
    }


# The fleet table: one instant query per column, each with the labels of
# gpu_monitor_device_available (job, instance, gpu, name, uuid), merged into one row per
# GPU. The health rule keeps only job, instance and gpu: name and uuid are joined back.
TABLE_COLUMNS: list[tuple[str, str, str, str]] = [
    ("A", "Available", f"gpu_monitor_device_available{{{FLEET}}}", "none"),
    ("B", "Utilisation", f"gpu_monitor_utilization_ratio{{{FLEET}}}", "percentunit"),
    ("C", "Memory used", f"gpu_monitor_memory_used_bytes{{{FLEET}}}", "bytes"),
    (
        "D",
        "Memory used %",
        f"gpu_monitor_memory_used_bytes{{{FLEET}}} / gpu_monitor_memory_total_bytes{{{FLEET}}}",
        "percentunit",
    ),
    ("E", "Temperature", f"gpu_monitor_temperature_celsius{{{FLEET}}}", "celsius"),
    ("F", "Power", f"gpu_monitor_power_draw_watts{{{FLEET}}}", "watt"),
    (
        "G",
        "Health",
        f"gpu:gpu_monitor_health:max{{{FLEET}}} + on (job, instance, gpu) group_left (name, uuid)"
        f" (0 * gpu_monitor_device_available{{{FLEET}}})",
        "none",
    ),
]
# As the alert rule GPUXidError (docs/prometheus-alerts.yml).
CRITICAL_XIDS = "48, 62, 63, 64, 74, 79, 92, 94, 95, 119 and 120 are critical"
# The history's XID errors and the usage's idle-held GPUs, one series per host whichever
# targets export it (a node's own target and a central site's with METRICS_FLEET).
XID_ERRORS = f"max by (host, gpu, uuid, xid) (gpu_monitor_xid_errors{{{FLEET}}})"
IDLE_HELD = f"max by (host) (gpu_monitor_idle_held_gpus{{{FLEET}}})"
NODE_LINK = (
    f"/d/{NODE_UID}/gpu-monitor-node?var-datasource=${{datasource}}"
    "&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}"
    "&var-gpu=${__data.fields.gpu}&${__url_time_range}"
)


def column(name: str, unit: str, **properties: Any) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": "unit", "value": unit}]
        + [{"id": key, "value": value} for key, value in properties.items()],
    }


def fleet_table() -> dict[str, Any]:
    link = [{"title": "Open this GPU's node dashboard", "url": NODE_LINK}]
    return panel(
        "table",
        "Every GPU",
        [target(expr, "", ref, instant=True, format="table") for ref, _, expr, _ in TABLE_COLUMNS],
        "none",
        size=(24, 14),
        description="One row per GPU of the selected instances; sort by any column. A row's "
        "instance or GPU opens the node dashboard with that server and GPU selected.",
        options={"showHeader": True, "sortBy": [{"displayName": "Health", "desc": True}]},
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "job": False, "Value #A": True},
                    "indexByName": {
                        "instance": 0,
                        "gpu": 1,
                        "name": 2,
                        **{f"Value #{ref}": 3 + i for i, (ref, *_) in enumerate(TABLE_COLUMNS)},
                        "uuid": 3 + len(TABLE_COLUMNS),
                        "job": 4 + len(TABLE_COLUMNS),
                    },
                    "renameByName": {
                        "instance": "Instance",
                        "gpu": "GPU",
                        "name": "Name",
                        "uuid": "UUID",
                        "job": "Job",
                        **{f"Value #{ref}": title for ref, title, _, _ in TABLE_COLUMNS},
                    },
                },
            },
        ],
        overrides=[
            *(column(title, unit) for _, title, _, unit in TABLE_COLUMNS[1:6]),
            column(
                "Health",
                "none",
                mappings=HEALTH_MAPPINGS,
                **{"custom.cellOptions": {"type": "color-background"}},
            ),
            column("Instance", "none", links=link),
            column("GPU", "none", links=link),
        ],
    )


def fleet_dashboard() -> dict[str, Any]:
    """Every GPU of the fleet in one table, and fleet totals (from the recording rules)."""
    jobs = 'job=~"$job"'
    layout = Layout()
    layout.add(
        row("Fleet totals"),
        stat("GPUs", f"sum(job:gpu_monitor_gpus:sum{{{jobs}}})", "none"),
        stat(
            "Busy",
            f"sum(job:gpu_monitor_gpus_busy:sum{{{jobs}}})",
            "none",
            description="GPUs that compute (utilisation above 0) or whose memory a process holds.",
        ),
        stat("Idle", f"sum(job:gpu_monitor_gpus_idle:sum{{{jobs}}})", "none"),
        stat(
            "Lost",
            f"sum(job:gpu_monitor_gpus_lost:sum{{{jobs}}})",
            "none",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "Unhealthy",
            f"sum(job:gpu_monitor_gpus_unhealthy:sum{{{jobs}}})",
            "none",
            description="Lost, uncorrected ECC errors, a row remap pending or failed, "
            "retired pages pending, or a hardware slowdown.",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "Mean utilisation",
            f"avg(job:gpu_monitor_utilization_ratio:avg{{{jobs}}})",
            "percentunit",
            defaults={"min": 0, "max": 1},
        ),
        row("Every GPU"),
        fleet_table(),
        row("Over time"),
        series(
            "Busy and idle GPUs",
            [
                target(f"sum(job:gpu_monitor_gpus_busy:sum{{{jobs}}})", "busy", "A"),
                target(f"sum(job:gpu_monitor_gpus_idle:sum{{{jobs}}})", "idle", "B"),
                target(f"sum(job:gpu_monitor_gpus_lost:sum{{{jobs}}})", "lost", "C"),
            ],
            "none",
            size=(8, 8),
            defaults={"min": 0, "decimals": 0},
        ),
        series(
            "Mean utilisation per instance",
            [
                target(
                    f"instance:gpu_monitor_utilization_ratio:avg{{{FLEET}}}",
                    "{{instance}}",
                )
            ],
            "percentunit",
            size=(8, 8),
            defaults={"min": 0, "max": 1},
        ),
        series(
            "Power draw per instance",
            [target(f"instance:gpu_monitor_power_draw_watts:sum{{{FLEET}}}", "{{instance}}")],
            "watt",
            size=(8, 8),
            defaults={"min": 0},
        ),
        series(
            "Memory used per instance",
            [
                target(
                    f"instance:gpu_monitor_memory_used_bytes:sum{{{FLEET}}}",
                    "{{instance}}",
                )
            ],
            "bytes",
            defaults={"min": 0},
        ),
        series(
            "GPU memory per user, whole fleet",
            [
                target(
                    f"sum by (user) (job_user:gpu_monitor_user_memory_used_bytes:sum{{{jobs}}})",
                    "{{user}}",
                )
            ],
            "bytes",
            defaults={"min": 0},
            description="Needs GPU_MONITOR['METRICS_USER_MEMORY'] = True on the servers.",
        ),
        row("XID errors and GPUs held idle"),
        stat(
            "XID errors, last 24 h",
            f"sum({XID_ERRORS}) or vector(0)",
            "none",
            size=(4, 8),
            description="Recorded by gpu_record (the history sub-app): each node's target "
            "exports its own, a central site's with METRICS_FLEET every host's; "
            f"{CRITICAL_XIDS}.",
            defaults={"thresholds": BAD_FROM_1},
        ),
        stat(
            "GPUs held idle",
            f"sum({IDLE_HELD}) or vector(0)",
            "none",
            size=(4, 8),
            description="GPUs that processes hold while they stay idle (utilisation at or "
            "below USAGE_IDLE_PERCENT) for USAGE_IDLE_MINUTES (the usage sub-app, GET "
            "api/gpu/usage/idle).",
            defaults={"thresholds": BAD_FROM_1},
        ),
        series(
            "GPUs held idle per host",
            [target(IDLE_HELD, "{{host}}")],
            "none",
            size=(8, 8),
            defaults={"min": 0, "decimals": 0},
        ),
        panel(
            "table",
            "XID errors per host, GPU and code, last 24 h",
            [target(XID_ERRORS, "", instant=True, format="table")],
            "none",
            size=(8, 8),
            description="Sort by any column; GET api/gpu/events?host= lists the events.",
            options={"showHeader": True, "sortBy": [{"displayName": "Errors", "desc": True}]},
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "indexByName": {"host": 0, "gpu": 1, "xid": 2, "Value": 3, "uuid": 4},
                        "renameByName": {
                            "host": "Host",
                            "gpu": "GPU",
                            "xid": "XID",
                            "Value": "Errors",
                            "uuid": "UUID",
                        },
                    },
                }
            ],
        ),
    )
    return dashboard(
        FLEET_UID,
        "GPU monitor: fleet",
        "Every GPU of every gpu_monitor server: one row each, and fleet totals.",
        [
            variable_datasource(),
            variable_query("job", "Job", "label_values(gpu_monitor_up, job)", multi=True),
            variable_query(
                "instance",
                "Instance",
                'label_values(gpu_monitor_up{job=~"$job"}, instance)',
                multi=True,
            ),
        ],
        layout,
    )


DASHBOARDS = {
    "gpu-monitor-node.json": node_dashboard,
    "gpu-monitor-fleet.json": fleet_dashboard,
}


def render(name: str) -> str:
    """The JSON text of dashboard file ``name``."""
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name in DASHBOARDS:
        (HERE / name).write_text(render(name))


if __name__ == "__main__":
    main()
