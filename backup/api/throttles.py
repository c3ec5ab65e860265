"""The API's side of the backup rate limits (`backup.throttles`), as a DRF throttle."""

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from backup.throttles import wait_before


class BackupRateThrottle(BaseThrottle):
    """Counts the view's `throttle_scope` per user and per tenant; runs after the permission
    check, which leaves the tenant on the view."""

    def allow_request(self, request: Request, view: Any) -> bool:
        self._wait = wait_before(view.throttle_scope, user=request.user, tenant=view.tenant)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
