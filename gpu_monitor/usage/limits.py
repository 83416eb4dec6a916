"""The bounds of the usage API's parameters: the views and ``gpu_usage`` check them, the
OpenAPI schema publishes them."""

from __future__ import annotations

DEFAULT_SPAN_S = 7 * 86400  # the window without ?since=: the last 7 days
MAX_IDLE_MINUTES = 10080  # a week
