"""The field tables of docs/api.md name exactly the fields of the OpenAPI schema (which
drf-spectacular derives from the serializers, themselves derived from the dataclasses)."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    schemas: dict[str, Any] = yaml.safe_load(out.getvalue())["components"]["schemas"]
    return schemas


def expand(name: str) -> list[str]:
    """``ecc_errors_{corrected,uncorrected}_{volatile,aggregate}`` -> its four names."""
    parts = re.split(r"\{([^}]*)\}", name)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combination) for combination in itertools.product(*choices)]


def documented_fields(table: int) -> set[str]:
    """The field names in the first column of the ``table``-th field table of the page."""
    tables = API_DOC.read_text().split("| field | meaning |")[1:]
    rows = tables[table].split("\n\n")[0].splitlines()[2:]
    names = {n for row in rows for n in re.findall(r"`([^`]+)`", row.split(" | ")[0])}
    return {field for name in names for field in expand(name)}


def properties(components: dict[str, Any], *names: str) -> set[str]:
    return {field for name in names for field in components[name]["properties"]}


def test_devices_table_names_every_field_of_a_gpu(components: dict[str, Any]) -> None:
    assert documented_fields(0) == properties(components, "GPUDevice")


def test_processes_table_names_every_field_of_a_process(components: dict[str, Any]) -> None:
    assert documented_fields(1) == properties(components, "GPUProcess") | {"gpu_errors"}


def test_braces_expand_to_every_combination() -> None:
    assert expand("a_{b,c}_{d,e}") == ["a_b_d", "a_b_e", "a_c_d", "a_c_e"]
