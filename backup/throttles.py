"""Rate limits of the expensive backup operations, the same for every web entry point.

An export, an upload (preview) and an import each cost the server work that grows with the tenant,
so the API and Admin > Backup count them alike: per user, and per tenant (all of its admins
together), each scope (`export`, `import`) with its own rates in `BACKUP_THROTTLE_RATES`. The
counting is DRF's (a history of request times in Django's default cache): configure a cache
shared by the server's processes (Redis, say) for the limits to hold across them.
"""

from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import Tenant

EXPORT, IMPORT = "export", "import"


class _Limit(SimpleRateThrottle):
    """One rate, counted under one key."""

    def __init__(self, rate: str | None, key: str) -> None:  # DRF's reads class settings
        self.rate = rate
        self.key = key
        self.num_requests, self.duration = self.parse_rate(rate)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.key

    def throttle_success(self) -> bool:
        return True  # counted by `count`, once every limit allowed the operation

    def count(self) -> None:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


def wait_before(scope: str, *, user: Any, tenant: Tenant) -> float | None:
    """Counts one `scope` operation of `user` on `tenant`; the seconds to wait before it is
    allowed, or None when it is allowed now."""
    configured = settings.BACKUP_THROTTLE_RATES
    limits = [
        _Limit(configured.get(f"{scope}_per_user"), f"backup_{scope}_user_{user.pk}"),
        _Limit(configured.get(f"{scope}_per_tenant"), f"backup_{scope}_tenant_{tenant.pk}"),
    ]
    refused = [limit for limit in limits if not limit.allow_request(None, None)]
    if refused:
        return max(limit.wait() or 1.0 for limit in refused)
    for limit in limits:
        if limit.rate is not None:
            limit.count()
    return None
