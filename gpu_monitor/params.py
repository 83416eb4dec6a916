"""One grammar for user input: GPU indexes and UUIDs, whole numbers, quoting input back."""

from __future__ import annotations

import re

from rest_framework.exceptions import NotFound

UUID_PATTERN = re.compile(r"(GPU|MIG)-[0-9A-Za-z-]{1,80}")

TOO_LARGE = 10**9  # past any index or interval; int() of 4301+ digits would raise


def whole_number(text: str) -> int | None:
    """A non-negative decimal number of any length from user input, capped at
    ``TOO_LARGE``; None when ``text`` is not one."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) < len(str(TOO_LARGE)) else TOO_LARGE


def shown(text: str, limit: int = 40) -> str:
    """User input as quoted in an error message: repr, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}..."


def gpu_key(key: str) -> int | str:
    """A GPU as named in a URL: an index (int) or a UUID (str); raises NotFound (404)."""
    index = whole_number(key)
    if index == TOO_LARGE:
        raise NotFound(f"No GPU with index {shown(key)}.")
    if index is not None:
        return index
    if UUID_PATTERN.fullmatch(key):
        return key
    raise NotFound(f"No GPU {shown(key)}: use an index (0, 1, ...) or a UUID (GPU-..., MIG-...).")
