"""The browser tests' shared parts: the example server on the fake NVML (``Server``) and
how Chromium starts; the fixtures that use them are in conftest.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Headless Chromium as every browser test starts it: offline, quiet, no sandbox (root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Server:
    """The example project under ``runserver`` on a free loopback port, on the fake NVML
    (``scenario``, ``gpus``; ``state``: changes written to its state file, which a test
    rewrites to change the GPUs under the running server) with its own SQLite database."""

    def __init__(
        self,
        tmp_path: Path,
        scenario: str = "lost",
        settings: str = "example_project.settings",
        gpus: int = 3,
        state: dict[str, Any] | None = None,
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "nvml-state.json"
        self.state.write_text(json.dumps(state or {}))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "FAKE_NVML_GPUS": str(gpus),
            "FAKE_NVML_SCENARIO": scenario,
            "FAKE_NVML_STATE_FILE": str(self.state),
            "DJANGO_SETTINGS_MODULE": settings,
            "DJANGO_DEBUG": "1",  # runserver serves the static files
            "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        }
        self.env = env
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.log = (tmp_path / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(150):
            try:
                self.get("/api/gpu/status")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the example server did not start")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def run(self, code: str, *args: str, stdin: str | None = None) -> None:
        """Runs Python ``code`` (``args`` in ``sys.argv``) with the server's settings."""
        subprocess.run(
            [sys.executable, "-c", code, *args],
            input=stdin,
            text=True,
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()
