"""The browsable API (issue 32): the app's root in the breadcrumb has a name, not "Not
Found", and a view's docstring is HTML (paragraphs, code, a preformatted example), not
raw reST with its double backquotes."""

from __future__ import annotations

import re
from types import ModuleType

import pytest
from django.test import Client

from gpu_monitor.api import docstring_html

pytestmark = pytest.mark.django_db


def page(path: str) -> str:
    response = Client().get(path, HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("text/html")
    return str(response.content.decode())


def test_the_breadcrumb_names_the_apps_root(fake_nvml: ModuleType) -> None:
    crumbs = re.search(r'<ul class="breadcrumb">(.*?)</ul>', page("/api/gpu/devices"), re.S)

    assert crumbs
    names = re.findall(r'<a href="([^"]+)">([^<]+)</a>', crumbs.group(1))
    assert names == [("/api/gpu/", "GPU monitor API"), ("/api/gpu/devices", "Device List")]


def test_a_docstring_shows_as_html_not_rest(fake_nvml: ModuleType) -> None:
    text = page("/api/gpu/devices/0")

    assert "``" not in text
    assert "shaped like an item of <code>devices</code>; 404 when none.</p>" in text


def test_docstring_html_escapes_and_keeps_paragraphs() -> None:
    html = docstring_html('A <b>bold</b> ``x & "y"``\nclaim.\n\nNext.\n\n    code <1>\n    more')

    assert html == (
        "<p>A &lt;b&gt;bold&lt;/b&gt; <code>x &amp; &quot;y&quot;</code> claim.</p>"
        "<p>Next.</p><pre>code &lt;1&gt;\nmore</pre>"
    )


def test_options_keeps_the_plain_docstring(fake_nvml: ModuleType) -> None:
    body = Client().options("/api/gpu/devices/0", HTTP_ACCEPT="application/json").json()

    assert "an item of ``devices``" in body["description"]
