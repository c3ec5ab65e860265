"""Rate limits of the expensive endpoints (export, upload and import)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class BackupRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, reading the rates when a request comes in.

    DRF copies `DEFAULT_THROTTLE_RATES` into a class attribute at import time, so a changed
    setting (tests, a reloaded configuration) would otherwise be ignored."""

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # DRF reads this name
        return api_settings.DEFAULT_THROTTLE_RATES
