"""The bounds of the fleet API's parameters: the views check them, the OpenAPI schema
publishes them."""

from __future__ import annotations

from gpu_monitor.stored import PagePagination

PROBLEM_VALUES = {"1": True, "0": False, "": None}  # ?problem=: problems only, none, all


class HostPagination(PagePagination):
    """500 hosts a page (``?page=``), 1 to 1000 with ``?page_size=`` (400 otherwise)."""

    page_size = 500
