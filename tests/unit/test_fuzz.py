"""Schemathesis over every operation of the generated schema, in-process (WSGI).

All of schemathesis' checks, with the fake NVML in three states: healthy GPUs, no
NVML, one GPU lost. It must find nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from urllib.parse import quote

import pytest
import schemathesis
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from tests.schemathesis_helper import OPEN, wsgi_schema

# Every check is on. Exceptions, each scoped to its operations: the driver endpoint
# answers 503 by design (documented in the schema) when NVML is not available; history
# and usage answer a documented 400 when ``since`` is not before ``until``, a relation between
# two parameters that no OpenAPI schema can state (each alone is described exactly); the
# paged lists (events, hosts) a documented 400 for a page past the last, a relation to
# the number of rows that no schema can state either.
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path": "/api/gpu/driver/",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}
                },
            },
            {
                "include-path": "/api/gpu/history/",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404"]
                    }
                },
            },
            *(
                {
                    "include-path": path,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404"]
                        }
                    },
                }
                for path in ("/api/gpu/events/", "/api/gpu/hosts/")
            ),
            {
                "include-path": "/api/gpu/usage/",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404"]
                    }
                },
            },
        ]
    }
)
schema = wsgi_schema(config=CONFIG)


@pytest.fixture(params=["healthy", "no_nvml", "lost", "load", "mig"])
def scenario(request: pytest.FixtureRequest, fake_nvml: ModuleType, db: None) -> Iterator[str]:
    """The fake NVML with three GPUs, set once per test (not per example), and the
    process endpoints opened to anonymous clients so that their 200s are checked too.

    ``db``: schemathesis also sends made-up session cookies and Basic credentials, which
    the authentication classes look up in the database.
    """
    fake_nvml.configure(gpus=3, scenario=request.param)
    with override_settings(GPU_MONITOR=OPEN):
        yield str(request.param)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case, scenario: str) -> None:
    case.call_and_validate()


# Schemathesis keeps to the schema's patterns; these go past them: any text, and digit
# strings longer than int()'s limit of 4300 digits.
ANY_INPUT = st.text(max_size=50) | st.from_regex(r"\A[0-9]{4290,4400}\Z") | st.just("9" * 4301)


@pytest.mark.slow  # tens of seconds: -m "not slow" leaves it out of a quick run
@given(text=ANY_INPUT)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_index_or_interval_reaches_a_500(fake_nvml: ModuleType, text: str) -> None:
    client = Client()
    device = client.get(f"/api/gpu/devices/{quote(text, safe='')}")
    dashboard = client.get("/api/gpu/dashboard/", {"interval": text})

    assert device.status_code in (200, 404), text
    assert device["Content-Type"] == "application/json"
    assert dashboard.status_code == 200, text
