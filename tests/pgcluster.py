"""A throwaway PostgreSQL cluster in a temporary directory, for the tests that need a
real PostgreSQL: initdb, pg_ctl start on a Unix socket only, pg_ctl stop at exit.

Debian's ``postgresql`` package provides the server (``scripts/test`` installs it when
missing). initdb refuses to run as root, so as root the cluster runs as ``postgres``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass


def binary(name: str) -> str:
    """A PostgreSQL server program: on PATH, or in Debian's versioned directory."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


@dataclass
class Cluster:
    directory: str
    port: int = 54329

    @property
    def data(self) -> str:
        return os.path.join(self.directory, "data")

    def run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-c listen_addresses='' -k {self.directory} -p {self.port} -c fsync=off"
        self.run(
            binary("pg_ctl"),
            "-D",
            self.data,
            "-o",
            options,
            "-w",
            "-l",
            os.path.join(self.directory, "log"),
            "start",
        )

    def stop(self) -> None:
        self.run(binary("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


_cluster: Cluster | None = None


def start() -> Cluster:
    """The process's cluster, made and started on first use, removed at exit."""
    global _cluster
    if _cluster is None:
        cluster = Cluster(tempfile.mkdtemp(prefix="gpu-monitor-pg-"))
        if os.geteuid() == 0:
            shutil.chown(cluster.directory, "postgres", "postgres")
        cluster.run(binary("initdb"), "-D", cluster.data, "-A", "trust", "-U", "postgres")
        cluster.start()
        atexit.register(cluster.remove)
        _cluster = cluster
    return _cluster
