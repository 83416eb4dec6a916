"""A Prometheus server scrapes with a token (docs/settings.md, issue 32): DRF's
``TokenAuthentication`` looks the key up, where ``BasicAuthentication`` runs Django's
password hash on every scrape. A scrape with the token passes, a wrong token is a 401.

``rest_framework.authtoken`` has a model, so this runs in a child process on
``tests.unit.settings_token`` (an in-memory database migrated there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The token made as docs/settings.md says (drf_create_token), then scrapes of metrics.
# With ROUNDS set it also times ROUNDS scrapes with the token and with Basic auth.
SCRAPE = """
import base64, io, json, os, statistics, time
import django
django.setup()
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
User.objects.create_user("prometheus", password="scrape-not-secret")
out = io.StringIO()
call_command("drf_create_token", "prometheus", stdout=out)
key = out.getvalue().split()[2]
client = Client()
def scrape(header):
    return client.get("/api/gpu/metrics", HTTP_AUTHORIZATION=header, HTTP_ACCEPT="text/plain")
token = f"Token {key}"
basic = "Basic " + base64.b64encode(b"prometheus:scrape-not-secret").decode()
found = {
    "token": scrape(token).status_code,
    "wrong": scrape("Token " + "0" * 40).status_code,
    "wrong_challenge": scrape("Token " + "0" * 40).get("WWW-Authenticate"),
    "none": client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain").status_code,
    "basic": scrape(basic).status_code,
    "body": scrape(token).content.decode()[:4000],
}
rounds = int(os.environ.get("ROUNDS", "0"))
for name, header in (("token", token), ("basic", basic)):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        scrape(header)
        times.append((time.perf_counter() - start) * 1000)
    if times:
        found[f"{name}_median_ms"] = round(statistics.median(times), 2)
print(json.dumps(found))
"""


def scrape(rounds: int = 0) -> dict[str, Any]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.unit.settings_token",
        "ROUNDS": str(rounds),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRAPE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_a_scrape_with_the_token_passes_and_a_wrong_token_is_a_401() -> None:
    found = scrape()

    assert found["token"] == 200
    assert "gpu_monitor_up" in found["body"]
    assert (found["wrong"], found["wrong_challenge"]) == (401, "Token")
    assert found["none"] == 401
    assert found["basic"] == 200  # the docs keep Basic for people; scrapers use the token


if __name__ == "__main__":  # the timings docs/settings.md's advice rests on
    print(json.dumps({k: v for k, v in scrape(30).items() if k.endswith("_ms")}))
