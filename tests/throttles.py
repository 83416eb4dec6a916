"""Throttle classes for tests (DRF binds DEFAULT_THROTTLE_RATES at import time)."""

from rest_framework.throttling import AnonRateThrottle


class ThreePerMinute(AnonRateThrottle):
    rate = "3/minute"
