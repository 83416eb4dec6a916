"""Throttle classes for tests (DRF binds DEFAULT_THROTTLE_RATES at import time)."""

from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.throttling import AnonRateThrottle


class ThreePerMinute(AnonRateThrottle):
    rate = "3/minute"


# A composed permission (an OperandHolder, not a class) named by a dotted path.
AuthOrStaff = IsAuthenticated | IsAdminUser
