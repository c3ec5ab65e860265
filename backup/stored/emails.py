"""Telling the user who asked from the page or the API how a backup or a restore ended."""

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import send_mail

from backup.models import Job, Restore, StoredBackup, Trigger

log = logging.getLogger(__name__)
NOTIFIED = (Trigger.PAGE, Trigger.API)


def page_link(job: Job) -> str:
    return tenant_link(job.tenant_id)  # type: ignore[attr-defined]


def tenant_link(tenant_id: Any) -> str:
    """The tenant's Admin > Backup page, as a link for an email."""
    query = urlencode({"tenant": str(tenant_id)})
    return f"{settings.BACKUP_SITE_URL.rstrip('/')}/admin/backup/?{query}"


def backup_finished(backup: StoredBackup) -> None:
    if backup.status == StoredBackup.Status.SUCCEEDED:
        subject = f"Backup of {backup.tenant.name} is ready"
        body = (
            f"The backup of tenant '{backup.tenant.name}' you asked for is ready: "
            f"{backup.total_rows:,} rows, {backup.size or 0:,} bytes ({backup.kind}).\n"
        )
    else:
        subject = f"Backup of {backup.tenant.name} failed"
        body = (
            f"The backup of tenant '{backup.tenant.name}' you asked for failed:\n{backup.error}\n"
        )
    _send(backup, subject, body)


def restore_finished(restore: Restore) -> None:
    name = restore.tenant.name
    if restore.status == Restore.Status.SUCCEEDED:
        totals = (restore.report or {}).get("totals", {})
        subject = f"Restore into {name} finished"
        body = (
            f"The restore ({restore.mode}) you confirmed has finished: "
            f"{totals.get('create', 0):,} rows created, {totals.get('update', 0):,} updated, "
            f"{totals.get('delete', 0):,} deleted.\n"
        )
        if restore.undo_backup_id:
            body += f"The data as it was before is kept in backup {restore.undo_backup_id}.\n"
    elif restore.status == Restore.Status.AWAITING_CONFIRMATION:
        subject = f"Restore into {name}: preview ready"
        body = "The preview of the restore you asked for is ready: confirm it on the page.\n"
    else:
        subject = f"Restore into {name} failed"
        body = f"The restore you asked for failed; nothing was changed:\n{restore.error}\n"
    _send(restore, subject, body)


def _send(job: Job, subject: str, body: str) -> None:
    user = job.created_by
    if job.trigger not in NOTIFIED or user is None or not user.email:
        return
    body += f"\n{page_link(job)}\n"
    try:
        send_mail(subject, body, None, [user.email])
    except Exception:  # a mail server that is down must not fail the job it reports on
        log.exception("could not send the email about %s", job)
