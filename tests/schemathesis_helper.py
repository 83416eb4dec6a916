"""What the schemathesis tests share (tests/unit/test_fuzz.py and each sub-app's
test_schemathesis_*.py): the schema read from the app in-process, the window rule no
schema can state, and the database connection kept across the calls.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from schemathesis.checks import positive_data_acceptance

SCHEMA_URL = "/api/schema/?format=json"
# The process endpoints are admins-only by default: opened so that their 200s are checked.
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ISO = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d)"
    r"(?:[T ](?P<h>\d\d):(?P<m>\d\d)(?::(?P<s>\d\d)(?:\.\d+)?)?"
    r"(?:Z|(?P<sign>[+-])(?P<oh>\d\d):?(?P<om>\d\d)?)?)?"
)


def wsgi_schema(path_regex: str | None = None, config: Any = None) -> Any:
    """The app's OpenAPI schema, its operations called in-process through WSGI (only
    those whose path matches ``path_regex``, when given)."""
    options = {} if config is None else {"config": config}
    schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application(), **options)
    return schema if path_regex is None else schema.include(path_regex=path_regex)


def epoch_of(value: object, now: int, default: int) -> int | None:
    """The time a query value gives, worked out here independently of the views; None
    when it is not one (then the window rule does not apply)."""
    if isinstance(value, list):  # a repeated parameter: Django reads the last one
        value = value[-1] if value else None
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return None
    text = value
    if text == "now":
        return now
    if re.fullmatch(r"-\d+[smhdw]", text):
        return now - int(text[1:-1]) * UNIT[text[-1]]
    match = ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match["date"].split("-"))
    fields = (year, month, day, int(match["h"] or 0), int(match["m"] or 0), int(match["s"] or 0))
    offset = int(match["oh"] or 0) * 3600 + int(match["om"] or 0) * 60
    return calendar.timegm(fields) - (-offset if match["sign"] == "-" else offset)


def reversed_window(query: Mapping[str, Any], default_span: int) -> bool:
    """``since`` at or after ``until`` (either may be its default: until now, since
    ``default_span`` seconds before until)."""
    now = int(time.time())
    until = epoch_of(query.get("until"), now, now)
    if until is None:
        return False
    since = epoch_of(query.get("since"), now, until - default_span)
    return since is not None and since >= until


def call_and_validate_window(case: Any, windowed_path: str, default_span: int) -> None:
    """Call ``case`` and validate its response with every check; a request to a path
    ending in ``windowed_path`` whose window is reversed must be the 400 that names the
    rule, and is held to every other check."""
    response = case.call()
    if case.path.endswith(windowed_path) and reversed_window(case.query or {}, default_span):
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith("since: must be before until")
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    else:
        case.validate_response(response)


def call_and_validate_page(case: Any) -> None:
    """Call ``case`` and validate its response with every check; a page past the last
    (which depends on the rows, so no schema can state it) must be the 400 that names
    ``page``, and is held to every other check."""
    response = case.call()
    if response.status_code == 400 and " is past the last page (" in response.text:
        assert response.json()["detail"].startswith("page: "), response.text
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    else:
        case.validate_response(response)


@contextmanager
def kept_connection() -> Iterator[None]:
    """As Django's test client does: the test's connection (its transaction) outlives
    each request, which on PostgreSQL would close it; the process endpoints open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with override_settings(GPU_MONITOR=OPEN):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
