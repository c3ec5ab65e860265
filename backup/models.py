"""The backup service's own records: stored backups and restores, each a job run by a worker.

They belong to a tenant but are not the tenant's data: a backup never contains them and a
restore never touches them (the registry leaves this app's models out), so that restoring an
old backup keeps the list of backups, including the one that undoes the restore.
"""

import uuid

from django.conf import settings
from django.db import models

from tenants.models import Tenant


class Trigger(models.TextChoices):
    PAGE = "page", "Admin page"
    API = "api", "API"
    COMMAND = "command", "Command"
    SCHEDULE = "schedule", "Schedule"
    BEFORE_RESTORE = "before_restore", "Before restore"


# Triggers a person chose: these count towards the tenant's daily limit and notify by email.
BY_HAND = (Trigger.PAGE, Trigger.API, Trigger.COMMAND)


class Job(models.Model):
    """What every job shares: who asked, when it ran, how far it is, and the lease that tells a
    live worker from a dead one (`backup.stored.leases`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    error = models.TextField(blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    progress_table = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)  # "host:pid" of the worker running it

    class Meta:
        abstract = True

    @property
    def progress_percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, int(100 * self.progress_done / self.progress_total))

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class StoredBackup(Job):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="stored_backups")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    options = models.JSONField(default=dict)  # ExportOptions as a dict
    format_version = models.CharField(max_length=20, blank=True)
    rows = models.JSONField(default=dict)  # rows per tenant table
    total_rows = models.BigIntegerField(default=0)
    size = models.BigIntegerField(null=True, blank=True)  # bytes as stored (compressed)
    sha256 = models.CharField(max_length=64, blank=True)  # of the bytes as stored
    storage_name = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"backup {self.id} of {self.tenant_id} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class Restore(Job):
    """A restore of a stored backup or of an upload: previewed first, imported once confirmed."""

    class Status(models.TextChoices):
        PREVIEWING = "previewing", "Previewing"  # queued for, or running, the preview
        # `preview` holds what it would do
        AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting confirmation"
        IMPORTING = "importing", "Importing"  # confirmed: queued for, or running, the import
        SUCCEEDED = "succeeded", "Succeeded"  # `report` holds what it did
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # The tenant whose page, endpoint or command asked: the one restored into (merge, replace)
    # or, for a new tenant, the one whose backup it is.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="restores")
    backup = models.ForeignKey(
        StoredBackup, null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    upload_id = models.CharField(max_length=64, blank=True)  # an upload (`backup.uploads`)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.PREVIEWING)
    mode = models.CharField(max_length=20)
    options = models.JSONField(default=dict)  # the ImportOptions asked for, as a dict
    # Store a backup of the tenant's current data before a merge or replace is applied.
    undo = models.BooleanField(default=True)
    undo_backup = models.ForeignKey(
        StoredBackup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    preview = models.JSONField(null=True, blank=True)
    report = models.JSONField(null=True, blank=True)
    error_details = models.JSONField(null=True, blank=True)  # the problems of a failed check

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"restore {self.id} into {self.tenant_id} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.PREVIEWING, self.Status.IMPORTING)
