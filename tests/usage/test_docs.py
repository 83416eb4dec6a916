"""docs/usage.md: its API field tables name exactly the fields of the OpenAPI schema."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

USAGE_DOC = Path(__file__).resolve().parents[2] / "docs" / "usage.md"


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    schemas: dict[str, Any] = yaml.safe_load(out.getvalue())["components"]["schemas"]
    return schemas


def documented(heading: str) -> set[str]:
    """The field names in the first column of the field table under ``heading``."""
    section = USAGE_DOC.read_text().split(f"### `{heading}")[1]
    table = section.split("| field | meaning |")[1].split("\n\n")[0]
    return {
        n for row in table.splitlines()[2:] for n in re.findall(r"`([^`]+)`", row.split(" | ")[0])
    }


def test_the_usage_table_names_every_field_of_a_row(components: dict[str, Any]) -> None:
    assert documented("GET usage?") == set(components["UsageRow"]["properties"])


def test_the_idle_table_names_every_field_of_an_idle_gpu(components: dict[str, Any]) -> None:
    assert documented("GET usage/idle") == set(components["IdleGPU"]["properties"])


def test_the_settings_table_gives_the_defaults_of_conf() -> None:
    from gpu_monitor.conf import DEFAULTS

    section = USAGE_DOC.read_text().split("## Settings")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `(USAGE_\w+)` \| `([^`]+)` \|", section, re.MULTILINE)
    assert {key: value for key, value in rows} == {
        key: str(value) for key, value in DEFAULTS.items() if key.startswith("USAGE_")
    }
