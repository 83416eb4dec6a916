"""The bounds of the history API's parameters (the views check them, the OpenAPI
schema publishes them), and the recorder's limit on a statement."""

from __future__ import annotations

DEFAULT_SPAN_S = 3600  # the window without ?since=: the last hour
DEFAULT_POINTS = 300
MAX_POINTS = 2000
MAX_INDEX = 32767  # the largest index a recorded sample or event can hold
# A statement of the recorder's transactions (PostgreSQL: SET LOCAL statement_timeout)
# that has not returned by then is cancelled: a lock held elsewhere is an outage.
STATEMENT_TIMEOUT_S = 30
