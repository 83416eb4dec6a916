"""The bounds of the fleet API's parameters: the views check them, the OpenAPI schema
publishes them, and ``gpu_fleet`` offers the same choices (``host_filters``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rest_framework.exceptions import ParseError

from gpu_monitor.fleet.types import STATES, HostStateName
from gpu_monitor.params import name_text, shown
from gpu_monitor.stored import MAX_HOST_LENGTH, PagePagination

PROBLEM_VALUES = {"1": True, "0": False, "": None}  # ?problem=: problems only, none, all

HostSort = Literal["host", "problems", "last_seen"]
# ?sort=: each choice and what it does, in the order the docs and the page list them.
SORTS: dict[HostSort, str] = {
    "host": "by host name (the default)",
    "problems": "down hosts first, then hosts with a hardware problem, then stale hosts, "
    "then the rest; by host name within each",
    "last_seen": "the host silent longest first (oldest last tick); by host name on a tie",
}
DEFAULT_SORT: HostSort = "host"


@dataclass(frozen=True)
class HostFilters:
    """What ``GET hosts`` (``?state=&problem=&q=&sort=``) and ``gpu_fleet``
    (``--state --problem -q --sort``) select, and in which order."""

    state: HostStateName | None = None
    problem: bool | None = None  # True: only hosts with a problem; False: only without
    q: str = ""  # a substring of the host name, any case
    sort: HostSort = DEFAULT_SORT


def host_filters(
    state: str | None = None, problem: str | None = None, q: str = "", sort: str | None = None
) -> HostFilters:
    """The filters from their texts (``None`` or "": not given); a 400 (``ParseError``)
    naming the parameter and its choices for a bad one."""
    state_name = next((s for s in STATES if s == state), None)
    if state and state_name is None:
        raise ParseError(f"state: one of {', '.join(STATES)}, not {shown(state)}")
    problem_text = problem or ""
    if problem_text not in PROBLEM_VALUES:
        raise ParseError(f"problem: 1 or 0, not {shown(problem_text)}")
    sort_name = next((s for s in SORTS if s == (sort or DEFAULT_SORT)), None)
    if sort_name is None:
        raise ParseError(f"sort: one of {', '.join(SORTS)}, not {shown(sort or '')}")
    return HostFilters(
        state=state_name,
        problem=PROBLEM_VALUES[problem_text],
        q=name_text("q", q, MAX_HOST_LENGTH),
        sort=sort_name,
    )


class HostPagination(PagePagination):
    """500 hosts a page (``?page=``), 1 to 1000 with ``?page_size=`` (400 otherwise)."""

    page_size = 500
