"""Signed download links: bound to one user and one backup, valid for a few minutes.

A browser session (whose cookie anyone at the keyboard could use) must confirm the account's
password to get a link; a token client's token is its credential. The link carries no secret of
its own beyond the signature (`django.core.signing`, salted for this use) and is useless to
anyone but the user it was issued to.
"""

import datetime as dt
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone

from backup.audit import record
from backup.errors import LinkRefused, NotRestorable, PasswordRequired
from backup.models import StoredBackup
from backup.stored import storage

SALT = "backup.stored.download"


def link_seconds() -> int:
    return int(settings.BACKUP_DOWNLOAD_LINK_SECONDS)


def issue(
    backup: StoredBackup, *, user: Any, password: str | None, check_password: bool
) -> tuple[str, dt.datetime]:
    """A signed token for downloading `backup`, and when it expires."""
    if backup.status != StoredBackup.Status.SUCCEEDED:
        raise NotRestorable(f"Backup {backup.id} is {backup.status}: it has no file to download.")
    if check_password and not (password and user.check_password(password)):
        record(
            backup.tenant,
            "backup.stored.link_refused",
            actor=user,
            details={"backup": str(backup.id), "reason": "password"},
        )
        raise PasswordRequired(
            "password: confirm your account's password to download a backup."
            if not password
            else "password: the password is wrong."
        )
    token = signing.dumps({"backup": str(backup.id), "user": user.pk}, salt=SALT)
    expires_at = timezone.now() + dt.timedelta(seconds=link_seconds())
    record(
        backup.tenant,
        "backup.stored.link_issued",
        actor=user,
        details={"backup": str(backup.id), "expires_at": expires_at.isoformat()},
    )
    return token, expires_at


def check(token: str, *, backup: StoredBackup, user: Any) -> None:
    """Refuse a token that is tampered with, expired, or not this user's for this backup."""
    try:
        data = signing.loads(token or "", salt=SALT, max_age=link_seconds())
    except signing.SignatureExpired:
        raise LinkRefused(
            f"This download link has expired (links last {link_seconds()} s): ask for a new one."
        ) from None
    except signing.BadSignature:
        raise LinkRefused("This download link is not valid: it was altered or cut short.") from None
    if data.get("backup") != str(backup.id) or data.get("user") != getattr(user, "pk", None):
        raise LinkRefused(
            "This download link was issued for another user or another backup: ask for your own."
        )


def open_download(token: str, *, backup: StoredBackup, user: Any) -> Any:
    """The backup's file, once the link is checked; the download is audited."""
    check(token, backup=backup, user=user)
    handle = storage.open_stored(backup.storage_name)
    record(
        backup.tenant,
        "backup.stored.downloaded",
        actor=user,
        details={"backup": str(backup.id), "size": backup.size, "sha256": backup.sha256},
    )
    return handle
