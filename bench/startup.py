"""Whole-process wall time of ``manage.py gpu_devices`` against ``manage.py version``.

Both start Django the same way (settings, apps, ``ready()`` and NVML init), so their
ratio shows only the command's own cost. Runs alternate to spread machine noise;
medians are reported. Uses the fake NVML (tests/fakes) unless ``--real`` is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from common import ROOT, interleaved_wall_times  # bench/common.py, beside this script

# The least any management command costs: Django with no app and no NVML, the same
# execute_from_command_line as manage.py. No project can start a command faster.
DJANGO_FLOOR = (
    "from django.conf import settings; settings.configure(); "
    "from django.core.management import execute_from_command_line; "
    "execute_from_command_line(['manage.py', 'version'])"
)
COMMANDS = {
    "manage.py version": ["manage.py", "version"],
    "manage.py gpu_devices --json": ["manage.py", "gpu_devices", "--json"],
    "manage.py gpu_devices": ["manage.py", "gpu_devices", "--no-color"],
    "empty Django project: version (floor)": ["-c", DJANGO_FLOOR],
}


def measure(runs: int, real: bool, gpus: int) -> dict[str, list[float]]:
    env = {**os.environ, "FAKE_NVML_GPUS": str(gpus)}
    if not real:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "tests" / "fakes"), env.get("PYTHONPATH")])
        )
    commands = {name: [sys.executable, *args] for name, args in COMMANDS.items()}
    times, failures = interleaved_wall_times(commands, runs, env)
    if failures:
        raise SystemExit(f"start-up benchmark: a command failed: {failures}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--real", action="store_true", help="use the installed pynvml")
    args = parser.parse_args()
    times = measure(args.runs, args.real, args.gpus)
    base = statistics.median(times["manage.py version"])
    print(
        f"\n## Command start-up ({args.runs} runs each, medians, "
        f"{'real NVML' if args.real else f'fake NVML, {args.gpus} GPUs'})\n"
    )
    print("| command | median s | min s | ratio to version |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {median / base:.2f} |")
    ratio = statistics.median(times["manage.py gpu_devices --json"]) / base
    print(
        f"\nTarget gpu_devices --json / version <= 1.05: {'PASS' if ratio <= 1.05 else 'FAIL'}"
        f" ({ratio:.2f})"
    )


if __name__ == "__main__":
    main()
