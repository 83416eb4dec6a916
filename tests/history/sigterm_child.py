"""A ``gpu_record --interval 1`` whose write hangs, sent SIGTERM by a thread of its own
process once ticks wait in the buffer: what the command's signal handler must cope with.

``test_recorder_faults`` runs it as a process of its own (``python -m
tests.history.sigterm_child``, the environment of ``test_recorder_process.env``), so that
a SIGTERM no handler catches ends this process, and the test fails, not the test run.
It prints one JSON line: ``elapsed`` (seconds from the signal to the command's return),
``message`` and ``returncode`` of its CommandError, ``buffered`` (the ticks waiting when
the signal went), or ``error``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from typing import Any

import django

WAIT_S = 30.0  # for the write to hang and the ticks to pile up, on a loaded machine
BUFFERED = 3  # the tick whose write hangs and two more


def main() -> None:
    django.setup()
    from django.core.management import CommandError, call_command
    from django.db import OperationalError

    from gpu_monitor.history import writer as writer_module
    from gpu_monitor.history.buffer import Tick
    from gpu_monitor.history.recorded import Recorded
    from gpu_monitor.history.recorder import Recorder
    from gpu_monitor.history.writer import Writer

    entered, release = threading.Event(), threading.Event()
    made: list[Recorder] = []
    sent: list[float] = []
    buffered: list[int] = []

    def hang(self: Writer, tick: Tick) -> None:
        entered.set()
        release.wait(WAIT_S)
        raise OperationalError("released")

    def nothing_recorded(host: str, alias: str) -> tuple[Recorded, int | None]:
        return Recorded(), None  # no database needed: the write hangs before it

    init = Recorder.__init__

    def remembered(self: Recorder, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    Recorder.__init__ = remembered  # type: ignore[method-assign]
    Writer.write_tick = hang  # type: ignore[method-assign]
    writer_module.read_recorded = nothing_recorded

    def terminate() -> None:
        deadline = time.monotonic() + WAIT_S
        while not (entered.is_set() and made and made[0].unwritten() >= BUFFERED):
            if time.monotonic() > deadline:
                print(json.dumps({"error": f"no hung write and {BUFFERED} ticks in {WAIT_S} s"}))
                os._exit(3)
            time.sleep(0.02)
        buffered.append(made[0].unwritten())
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)  # to the main thread: the command's handler

    threading.Thread(target=terminate, name="terminate", daemon=True).start()
    result: dict[str, Any]
    try:
        call_command("gpu_record", "--interval", "1", stdout=io.StringIO())
        result = {"error": "gpu_record returned without an error"}
    except CommandError as exc:
        elapsed = time.monotonic() - sent[0] if sent else None
        result = {
            "elapsed": elapsed,
            "message": str(exc),
            "returncode": exc.returncode,
            "buffered": buffered[0] if buffered else None,
        }
    finally:
        release.set()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
