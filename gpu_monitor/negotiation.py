"""One rule of content negotiation for every GPU monitor URL, the ones that serve both a
page and JSON (``dashboard/`` and the sub-apps' pages) included.

The client's quality values decide, as HTTP says (RFC 9110, 12.5.1): each renderer of
the URL gets the ``q`` of the most specific media range of ``Accept`` that matches its
media type, and the renderer with the highest ``q`` answers. Of renderers with the same
``q``, the one matched by the more specific range wins (``application/json, */*`` is
JSON), then the URL's first renderer (``*/*``, or no ``Accept``: the page of
``dashboard/``, the JSON of a URL whose API comes first). A range with ``q=0`` accepts
nothing; nothing accepted is a 406. ``?format=`` narrows the renderers first (none: a
404), as DRF's.

DRF's ``DefaultContentNegotiation`` orders ranges by specificity only and ignores
``q``: ``Accept: text/html;q=0.9, application/json`` was the page at a URL whose first
renderer is the page and JSON at one whose first renderer is JSON. Where every ``q`` is
equal the two rules choose the same renderer. Django's own
``HttpRequest.get_preferred_type`` (5.2) honours ``q`` but cannot stand in: a range with
parameters (``application/json; indent=4``, which DRF's JSON renderer reads) matches no
renderer there, a 406.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework.exceptions import NotAcceptable, NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from gpu_monitor.params import shown


@dataclass(frozen=True)
class MediaRange:
    """A media type or range (``text/html``, ``text/*``, ``*/*``) with its parameters."""

    text: str
    main: str
    sub: str
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> MediaRange:
        try:
            full, params = parse_header_parameters(text)
        except ValueError:  # past Django's header length: matches nothing
            full, params = "", {}
        main, _, sub = full.partition("/")
        return cls(text, main, sub, params)

    @property
    def quality(self) -> float:
        """``q`` from 0 to 1; 1 when absent or not a number (as most servers read it)."""
        try:
            q = float(self.params.get("q", "1"))
        except ValueError:
            return 1.0
        return min(max(q, 0.0), 1.0) if q == q else 1.0  # NaN: 1

    @property
    def precedence(self) -> int:
        """How specific: 3 ``type/sub;param=v``, 2 ``type/sub``, 1 ``type/*``, 0 ``*/*``
        (DRF's scale)."""
        if self.main == "*":
            return 0
        if self.sub == "*":
            return 1
        return 3 if set(self.params) - {"q"} else 2

    def offers(self, accepted: MediaRange) -> bool:
        """Whether a renderer of this media type satisfies the range ``accepted``
        (DRF's match: the renderer's parameters but ``q`` must be in the range too)."""
        for key, value in self.params.items():
            if key != "q" and accepted.params.get(key) != value:
                return False
        if "*" not in (self.sub, accepted.sub) and accepted.sub != self.sub:
            return False
        return "*" in (self.main, accepted.main) or accepted.main == self.main


class QualityNegotiation(DefaultContentNegotiation):
    """The renderer whose media type the client accepts with the highest ``q`` (the
    module's rule); DRF's limits on the ``Accept`` header and its ``?format=`` stay."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        offered = list(renderers)
        format_name = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if format_name:
            kept = [r for r in offered if r.format == format_name]
            if not kept:  # DRF's 404, naming the parameter and what it takes
                formats = ", ".join(dict.fromkeys(str(r.format) for r in offered))
                raise NotFound(f"format: one of {formats}, not {shown(format_name)}")
            offered = kept
        return choose(offered, self.get_accept_list(request))

    def error_renderer(
        self, request: Request, renderers: list[BaseRenderer]
    ) -> tuple[BaseRenderer, str]:
        """The renderer of an error whose negotiation failed (a ``?format=`` of no
        renderer, an ``Accept`` of none): by ``Accept`` alone, so that a JSON client's
        404 for a bad ``?format=`` is JSON, not the page; else the URL's first renderer
        (DRF's fallback)."""
        try:
            return choose(renderers, self.get_accept_list(request))
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


def choose(renderers: list[Any], accept: list[str]) -> tuple[Any, str]:
    """The renderer for the ``Accept`` tokens ``accept`` and the accepted media type (as
    DRF gives it: a range less specific than the renderer's type is replaced by it,
    keeping the range's parameters)."""
    ranges = [MediaRange.parse(token) for token in accept]
    best: tuple[float, int] | None = None
    chosen: tuple[Any, str] | None = None
    for renderer in renderers:
        offered = MediaRange.parse(renderer.media_type)
        matching = [accepted for accepted in ranges if offered.offers(accepted)]
        if not matching:
            continue
        top = max(accepted.precedence for accepted in matching)
        accepted = max((a for a in matching if a.precedence == top), key=lambda a: a.quality)
        rank = (accepted.quality, accepted.precedence)
        if accepted.quality > 0 and (best is None or rank > best):
            best = rank
            media_type = accepted.text
            if offered.precedence > accepted.precedence:  # */* or text/*: the renderer's
                media_type = ";".join(
                    (renderer.media_type, *(f"{k}={v}" for k, v in accepted.params.items()))
                )
            chosen = renderer, media_type
    if chosen is None:
        raise NotAcceptable(available_renderers=renderers)
    return chosen
