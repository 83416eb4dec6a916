"""Nodes that push: real ``manage.py gpu_record --push`` processes (the fake NVML, two
GPUs, settings with no DATABASES at all) against the example project under gunicorn on a
temporary SQLite file, with tokens from ``manage.py gpu_host_token create``.

Every tick is written; a wrong token, a revoked one and another host's name end the
recorder with exit 1 and the site's reason; a replayed tick counts once; a 10 MB body is
refused; the site down for 20 s loses no tick; SIGTERM ends a recorder within 1 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_monitor.history import push
from tests.e2e import ROOT
from tests.history.test_recorder_process import Watched

pytestmark = pytest.mark.e2e

WAIT_S = 60.0  # for a process to get somewhere, on a loaded machine
OUTAGE_S = 20.0  # the issue's: the site down this long loses no tick


def wait_for(condition: Callable[[], bool], seconds: float = WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s"
        time.sleep(0.1)


class Site:
    """The example project under gunicorn on a SQLite file of its own; ``stop`` and
    ``start`` again on the same port (an outage)."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api/gpu/ingest"
        self.db = tmp / "site.sqlite3"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "FAKE_NVML_GPUS": "2",
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SQLITE_PATH": str(self.db),
            "NO_PROXY": "127.0.0.1",
        }
        self.manage("migrate")
        self.log = (tmp / "gunicorn.log").open("ab")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args, "--verbosity", "0"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def token(self, host: str, tmp: Path) -> Path:
        """A new token of ``host`` in a file of its own."""
        path = tmp / f"token-{host}-{time.monotonic_ns()}"
        path.write_text(self.manage("gpu_host_token", "create", host))
        return path

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example_project.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.answers)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url.replace("ingest", "status"), timeout=2):
                return True
        except OSError:
            assert self.process is not None and self.process.poll() is None, "gunicorn ended"
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def post(self, body: bytes, token: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            # The node's client: it reads a 413 the site sends before the body is in.
            with push.build_opener().open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read() or b"{}")

    def epochs(self, host: str) -> list[int]:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as db:
            rows = db.execute(
                "SELECT DISTINCT epoch FROM gpu_monitor_history_sample WHERE host = ? "
                "ORDER BY epoch",
                (host,),
            ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        self.stop()
        self.log.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = Site(tmp_path_factory.mktemp("push-site"))
    yield made
    made.close()


class Node(Watched):
    """A ``gpu_record --push`` process, its stderr read by a thread as it comes."""

    def __init__(self, site: Site, host: str, token_file: Path, *args: str) -> None:
        env = {
            **site.env,
            "DJANGO_SETTINGS_MODULE": "tests.e2e.settings_push_node",
        }
        env.pop("GPU_MONITOR_TOKEN", None)
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "gpu_record",
                "--push",
                site.url,
                "--token-file",
                str(token_file),
                "--host",
                host,
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = ""
        self.watch(process)

    def finish(self, seconds: float = WAIT_S) -> tuple[int, str]:
        self.process.wait(seconds)
        self.reader.join(seconds)
        assert self.process.stdout is not None
        if not self.process.stdout.closed:
            self.stdout = self.process.stdout.read()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode, "".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        node.kill()


def contiguous(epochs: list[int]) -> bool:
    return epochs == list(range(epochs[0], epochs[-1] + 1)) if epochs else False


def test_every_tick_is_written_and_sigterm_ends_it_within_a_second(
    site: Site, tmp_path: Path, nodes: list[Node]
) -> None:
    node = Node(site, "push-1", site.token("push-1", tmp_path), "--interval", "1")
    nodes.append(node)
    wait_for(lambda: len(site.epochs("push-1")) >= 4)

    started = time.monotonic()
    node.process.send_signal(signal.SIGTERM)
    node.process.wait(10)
    elapsed = time.monotonic() - started
    code, stderr = node.finish()

    assert code == 0, stderr
    assert elapsed < 1.0
    assert (node.stdout, stderr) == (
        f"Recording host 'push-1' every 1 s, pushing to {site.url}; SIGTERM or Ctrl-C stops.\n",
        "",
    )
    epochs = site.epochs("push-1")
    assert contiguous(epochs), epochs  # every tick, none twice (samples: 2 a tick)
    with contextlib.closing(sqlite3.connect(site.db)) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM gpu_monitor_history_sample WHERE host = 'push-1'"
        ).fetchone()
        (state,) = db.execute(
            "SELECT COUNT(*) FROM gpu_monitor_fleet_hoststate WHERE host = 'push-1'"
        ).fetchone()
    assert count == 2 * len(epochs) and state == 1


@pytest.mark.parametrize("case", ["wrong", "revoked", "other host"])
def test_a_token_the_site_refuses_ends_the_recorder_with_its_reason(
    site: Site, tmp_path: Path, case: str
) -> None:
    token_file = site.token("push-2", tmp_path)
    host, said = "push-2", "HTTP 401"
    if case == "wrong":
        token_file.write_text("gpumon_not-a-token-of-this-site")
    elif case == "revoked":
        site.manage("gpu_host_token", "revoke", "push-2")
        said = "revoked"
    else:
        host, said = "push-3", "HTTP 403"
    node = Node(site, host, token_file, "--interval", "1")
    code, stderr = node.finish()

    assert code == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: The site refused") and said in last, stderr
    assert stderr.count(said) == 2  # logged once when refused, then the exit's line
    assert "Traceback" not in stderr
    assert token_file.read_text().strip() not in stderr
    assert site.epochs(host) == []


def test_a_replayed_tick_counts_once_and_10_mb_is_refused(site: Site, tmp_path: Path) -> None:
    token = site.token("push-4", tmp_path).read_text().strip()
    device = {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-push-4",
        "temperature_c": 40,
    }
    tick = {
        "epoch": 1_795_856_000,
        "nvml_error": None,
        "devices": [device],
        "lost": [],
        "driver": None,
        "processes": None,
        "xids": [],
    }
    body = {
        "version": 1,
        "host": "push-4",
        "interval": 10,
        "processes_recorded": False,
        "dropped": 0,
        "ticks": [tick],
    }
    data = json.dumps(body).encode()

    assert site.post(data, token) == (200, {"host": "push-4", "written": 1, "duplicates": 0})
    assert site.post(data, token) == (200, {"host": "push-4", "written": 0, "duplicates": 1})
    assert site.epochs("push-4") == [1_795_856_000]

    status, answer = site.post(b" " * (10 * 1024 * 1024), token)
    assert status == 413, answer
    assert "detail" in answer


@pytest.mark.slow
def test_the_site_down_for_20_s_loses_no_tick(
    site: Site, tmp_path: Path, nodes: list[Node]
) -> None:
    node = Node(site, "push-5", site.token("push-5", tmp_path), "--interval", "1", "-v", "2")
    nodes.append(node)
    wait_for(lambda: len(site.epochs("push-5")) >= 2)

    site.stop()
    down = time.time()
    wait_for(lambda: node.said("Site unreachable, keeping up to") == 1)
    time.sleep(OUTAGE_S)
    site.start()
    up = time.time()
    # Written once the node's backoff (at most about the outage again) is over.
    wait_for(lambda: node.said("Site reachable again") == 1, WAIT_S + OUTAGE_S)
    wait_for(lambda: site.epochs("push-5")[-1] > up + 1)

    node.process.send_signal(signal.SIGTERM)
    code, stderr = node.finish()
    assert code == 0, stderr
    epochs = site.epochs("push-5")
    assert contiguous(epochs), epochs
    assert epochs[0] < down and epochs[-1] > up  # before, during and after the outage
    assert node.said("Site unreachable, keeping up to") == 1
    assert "Traceback" not in stderr
