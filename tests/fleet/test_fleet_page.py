"""The fleet's pages, rendered on the server: ``fleet/`` (a tile per host) and
``fleet/<host>/`` (the dashboard's cards, read from the database). The browser test is
tests/e2e/test_fleet_page_browser.py."""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.db import OperationalError, connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from gpu_monitor.fleet import hosts, pages
from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import Recorder
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]
STATIC = Path(pages.__file__).parent / "static" / "gpu_monitor" / "fleet"


def page(client: Client, path: str = "fleet/", status: int = 200) -> str:
    response = client.get(f"/api/gpu/{path}")
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def embedded(text: str, element_id: str) -> Any:
    """The JSON a page embeds with ``json_script``."""
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', text)
    assert match, element_id
    return json.loads(match.group(1))


def as_json(client: Client, path: str, status: int = 200) -> Any:
    response = client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    return response.json()


def three_hosts(fake_nvml: ModuleType, record: Record) -> None:
    """node-a up (utilisation 20 % and 81 %), node-b stale with an ECC problem on GPU 1,
    node-c down (the clock is NOW)."""
    gpus = fake_nvml.STATE.gpus
    gpus[0].utilization_gpu, gpus[1].utilization_gpu = 20, 81
    record("node-a")
    gpus[1].ecc_uncorrected_volatile = 2
    record("node-b", epoch=NOW - 40)
    gpus[1].ecc_uncorrected_volatile = 0
    record("node-c", epoch=NOW - 900)


def test_the_fleet_page_has_a_tile_per_host_and_the_counts(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    three_hosts(fake_nvml, record)

    text = page(client)

    fleet = embedded(text, "fleet-data")
    assert fleet["counts"] == {"up": 1, "stale": 1, "down": 1}
    assert (fleet["count"], fleet["problem_hosts"]) == (3, 1)
    # Problems first by default: the down host, the stale one with a problem, the rest.
    assert [h["host"] for h in fleet["hosts"]] == ["node-c", "node-b", "node-a"]
    assert [h["state"] for h in fleet["hosts"]] == ["down", "stale", "up"]
    assert fleet["hosts"][2]["gpu_utilization"] == [20, 81]  # each GPU, for the strip
    assert [p["gpu_index"] for p in fleet["hosts"][1]["problems"]] == [1]
    assert fleet["hosts"][0]["age_seconds"] == 900
    assert 'Up <b id="count-up">1</b>' in text and 'Down <b id="count-down">1</b>' in text
    assert 'Problems <b id="count-problem">1</b>' in text
    assert 'id="no-hosts" class="no-gpu" hidden' in text
    config = embedded(text, "fleet-config")
    assert config["fleet"] == "/api/gpu/fleet"  # the page refreshes from its own JSON
    assert config["host_page"].replace(config["placeholder"], "x") == "/api/gpu/fleet/x"
    assert config["interval"] == 10  # the recorder's default tick


def test_the_fleet_json_is_the_hosts_api_with_each_gpus_utilisation(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    three_hosts(fake_nvml, record)
    fake_nvml.configure(gpus=3)
    fake_nvml.STATE.gpus[1].utilization_gpu = 55
    fake_nvml.STATE.gpus[2].utilization_gpu = 100
    record("node-d")  # three GPUs: the strip follows each host's GPU count

    fleet = as_json(client, "fleet/")

    api = client.get("/api/gpu/hosts?sort=problems").json()["results"]
    assert [{k: v for k, v in h.items() if k != "gpu_utilization"} for h in fleet["hosts"]] == api
    assert [h["gpu_utilization"] for h in fleet["hosts"]] == [[20, 81]] * 3 + [[0, 55, 100]]
    assert fleet == as_json(client, "fleet?format=json")


def test_a_gpu_without_utilisation_is_null_in_the_strip(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")  # GPU 1 is lost: no reading
    record("node-a")

    (host,) = as_json(client, "fleet")["hosts"]

    assert host["gpu_utilization"] == [0, None]


def test_q_fills_the_filter_box_escaped(record: Record, clock: Clock, client: Client) -> None:
    record("node-a")

    text = page(client, 'fleet/?q="><script>alert(1)</script>')

    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in text
    assert embedded(text, "fleet-config")["q"] == '"><script>alert(1)</script>'
    assert "<script>alert(1)" not in text


@pytest.mark.parametrize(("query", "interval"), [("", 10), ("?interval=3", 3), ("?interval=0", 1)])
def test_the_refresh_interval_from_the_query(
    record: Record, client: Client, query: str, interval: int
) -> None:
    record("node-a")

    text = page(client, f"fleet/{query}")

    assert embedded(text, "fleet-config")["interval"] == interval
    assert f"refresh every {interval} s" in text


def test_an_empty_fleet_says_how_to_start(client: Client) -> None:
    text = page(client)

    assert embedded(text, "fleet-data") == {
        "counts": {"up": 0, "stale": 0, "down": 0},
        "problem_hosts": 0,
        "count": 0,
        "hosts": [],
    }
    assert 'id="no-hosts" class="no-gpu" >' in text
    assert "gpu_record --host" in text


def test_the_fleet_is_read_in_a_fixed_number_of_queries(
    record: Record, clock: Clock, client: Client
) -> None:
    for n in range(3):
        record(f"node-{n}")
    with CaptureQueriesContext(connection) as few:
        as_json(client, "fleet")
    for n in range(3, 40):
        record(f"node-{n}")
    with CaptureQueriesContext(connection) as many:
        assert as_json(client, "fleet")["count"] == 40

    assert len(many) == len(few) <= 4


@pytest.mark.parametrize("path", ["fleet/", "fleet/node-a/"])
def test_the_pages_follow_the_permission_settings(
    record: Record, client: Client, path: str
) -> None:
    record("node-a")
    locked = {"PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}
    with override_settings(GPU_MONITOR=locked):
        text = page(client, path, status=403)

    assert "node-a" not in text
    assert "Error 403: " in text


@pytest.mark.parametrize("path", ["fleet/", "fleet/node-a/"])
def test_a_misconfigured_setting_closes_the_pages(
    record: Record, client: Client, path: str
) -> None:
    record("node-a")
    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 0}):
        text = page(client, path, status=503)
        body = as_json(client, path, status=503)

    assert "FLEET_DOWN_AFTER" in text and "node-a" not in text
    assert "FLEET_DOWN_AFTER" in body["detail"]


def test_a_database_that_cannot_answer_is_503_not_500(
    record: Record,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record("node-a")

    def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("no such table: gpu_monitor_fleet_hoststate")

    monkeypatch.setattr(hosts, "selected", broken)
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        text = page(client, status=503)

    assert (
        "The GPU fleet tables are missing or out of date (OperationalError): "
        "run manage.py migrate." in text
    )
    assert [r.name for r in caplog.records if r.name.startswith("gpu_monitor")] == [
        "gpu_monitor.fleet.pages"
    ]


def test_a_database_that_does_not_answer_says_so_not_migrate(
    record: Record, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    record("node-a")

    def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(hosts, "selected", broken)
    body = as_json(client, "fleet/", status=503)

    assert body == {
        "detail": "The GPU fleet database did not answer (OperationalError); see the server log."
    }


def test_other_methods_are_405(record: Record, client: Client) -> None:
    record("node-a")

    assert client.post("/api/gpu/fleet/").status_code == 405
    assert client.delete("/api/gpu/fleet/node-a/").status_code == 405
    assert client.options("/api/gpu/fleet/").content == b""


def test_the_host_page_shows_the_recorded_cards_not_this_servers_gpus(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    fake_nvml.STATE.gpus[0].temperature = 61
    record("node-a", epoch=NOW - 40, interval=10)
    fake_nvml.configure(scenario="no_nvml")  # the central site: no GPU, no driver
    fake_nvml.CALLS.clear()

    text = page(client, "fleet/node-a/")

    # The nav asks whether this process has NVML (a server initialised it at start):
    # one nvmlInit at most, and nothing of this server's GPUs is read.
    assert {k: n for k, n in fake_nvml.CALLS.items() if n and k != "nvmlInit"} == {}
    cards = text.split('<template id="card-template">')[0]
    assert cards.count('<article class="card"') == 2
    assert '<span class="value" data-field="temperature">61 °C</span>' in cards
    assert 'Driver <span id="driver-version">580.159.04</span>' in text
    assert '<h1 id="host-name">node-a</h1>' in text
    assert 'id="host-state" class="state" data-state="stale">stale</span>' in text
    assert 'data-age="40"' in text
    assert '<a href="/api/gpu/fleet">GPU fleet</a>' in text
    assert embedded(text, "gpu-monitor-config") == {
        "dashboard": "/api/gpu/fleet/node-a",  # dashboard.js refreshes from the host's JSON
        "interval": 10,  # the host's own interval
        "high_percent": 90,
        "hot_temperature_c": 80,
        "host": "node-a",  # ... and the history's panel reads that host's history
    }
    assert embedded(text, "gpu-monitor-history") == {
        "history": "/api/gpu/history",
        "events": "/api/gpu/events",
    }


@pytest.mark.parametrize(
    ("recorded", "query", "interval"),
    [(30, "", 30), (7200, "", 3600), (30, "?interval=2", 2), (30, "?interval=x", 30)],
)
def test_the_host_page_refreshes_at_the_hosts_interval(
    record: Record, clock: Clock, client: Client, recorded: int, query: str, interval: int
) -> None:
    record("node-a", interval=recorded)

    text = page(client, f"fleet/node-a/{query}")

    assert embedded(text, "gpu-monitor-config")["interval"] == interval


def test_the_host_json_is_the_dashboards_from_the_database(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    fake_nvml.STATE.gpus[1].ecc_uncorrected_volatile = 2
    record("node-a")
    fake_nvml.configure(scenario="no_nvml")

    body = as_json(client, "fleet/node-a")

    detail = client.get("/api/gpu/hosts/node-a").json()
    assert [{k: v for k, v in d.items() if k != "problems"} for d in body["devices"]] == (
        detail["devices"]
    )
    assert [[p["kind"] for p in d["problems"]] for d in body["devices"]] == [
        [],
        ["uncorrected_ecc"],
    ]
    assert body["count"] == 2
    assert body["status"] == {"cuda_available": True, "device_count": 2, "error_message": None}
    assert body["driver"] == detail["driver"]
    assert body["processes"] is None
    assert body["host"] == client.get("/api/gpu/hosts").json()["results"][0]


def test_a_host_without_gpus_says_so(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    fake_nvml.configure(scenario="no_nvml")
    record("node-a")

    text = page(client, "fleet/node-a")

    assert "<article" not in text.split('<template id="card-template">')[0]
    assert "the host recorded no GPU at its last tick" in text
    assert 'Driver <span id="driver-version">N/A</span>' in text


def test_the_host_page_lists_mig_slices(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")
    record("node-a")

    text = page(client, "fleet/node-a")

    assert text.split('<template id="card-template">')[0].count("MIG slices") == 1
    assert "1g.18gb" in text


@pytest.mark.parametrize(
    ("path", "name"), [("nobody", "nobody"), ("node-a%20x", "node-a x"), ("%C3%A9<b>", "é<b>")]
)
def test_an_unknown_host_is_a_404_page_naming_it(
    record: Record, client: Client, path: str, name: str
) -> None:
    record("node-a")

    text = page(client, f"fleet/{path}/", status=404)
    body = as_json(client, f"fleet/{path}/", status=404)

    assert f'Error 404: <span id="error-detail">{html.escape(body["detail"])}</span>' in text
    assert body["detail"] == f"No host {name!r} has recorded (gpu_record --host)."


def test_a_host_name_longer_than_255_is_400(record: Record, client: Client) -> None:
    record("node-a")

    assert "longer than 255" in page(client, f"fleet/{'x' * 256}/", status=400)
    assert as_json(client, f"fleet/{'x' * 256}", status=400)["detail"].startswith("host: ")
    page(client, f"fleet/{'x' * 255}/", status=404)


def test_processes_only_for_a_viewer_with_the_process_permission(
    fake_nvml: ModuleType, record: Record, clock: Clock, client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    record("node-a", processes=True)

    anonymous = page(client, "fleet/node-a/")
    anonymous_json = as_json(client, "fleet/node-a/")
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    admin = page(client, "fleet/node-a/")
    admin_json = as_json(client, "fleet/node-a/")

    assert 'data-field="processes"' not in anonymous and "11345" not in anonymous
    assert anonymous_json["processes"] is None
    assert '<span class="pid">11345</span>' in admin
    recorded = client.get("/api/gpu/hosts/node-a/processes").json()
    assert admin_json["processes"]["processes"] == recorded["processes"]
    assert all(p["command_line"] is None for p in admin_json["processes"]["processes"])


def test_a_host_that_records_no_processes_has_no_process_lists(
    record: Record, clock: Clock, admin_client: Client
) -> None:
    record("node-a")

    assert 'data-field="processes"' not in page(admin_client, "fleet/node-a/")
    assert as_json(admin_client, "fleet/node-a/")["processes"] is None


def test_stored_fields_this_version_does_not_know_are_ignored(
    record: Record, clock: Clock, client: Client
) -> None:
    """A node running a newer gpu_monitor may store more fields: not a 500."""
    record("node-a")
    row = HostState.objects.get()
    row.devices = [{**d, "new_field": 1} for d in row.devices]
    row.driver = {**row.driver, "new_version": "1"}
    row.save()

    assert page(client, "fleet/node-a/").count('<article class="card"') == 3


def test_the_assets_are_local_static_files() -> None:
    for name in ("gpu_monitor/fleet/fleet.css", "gpu_monitor/fleet/fleet.js"):
        assert finders.find(name), name
    templates = Path(pages.__file__).parent / "templates"
    texts = [p.read_text() for p in STATIC.iterdir()]
    texts += [p.read_text() for p in templates.rglob("*.html")]
    assert len(texts) == 4
    for text in texts:
        assert "http://" not in text and "https://" not in text and "@import" not in text


def nav_current(text: str) -> dict[str, str]:
    """The pages' nav: label -> aria-current ("" for none)."""
    nav = re.search(r'<nav class="pages"[^>]*>(.*?)</nav>', text, re.S)
    assert nav, text[:500]
    found = re.findall(r'<a href="[^"]+"(?: aria-current="(\w+)")?>([^<]+)</a>', nav.group(1))
    return {label: current for current, label in found}


def test_the_nav_marks_the_fleet_on_its_pages(record: Record, client: Client) -> None:
    record("node-a")

    # Usage is left out: an anonymous viewer may not open it (PROCESS_PERMISSION_CLASSES).
    assert nav_current(page(client)) == {"Dashboard": "", "Fleet": "page"}
    assert nav_current(page(client, "fleet/node-a/")) == {"Dashboard": "", "Fleet": "true"}


def test_an_unknown_hosts_404_page_links_back_to_the_fleet(record: Record, client: Client) -> None:
    record("node-a")

    text = page(client, "fleet/nobody/", status=404)

    assert '<a id="back" href="/api/gpu/fleet">Back to the GPU fleet</a>' in text
    assert 'id="back"' not in page(client, "fleet/?interval=0x", status=200)
