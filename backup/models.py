"""The backup service's own records: stored backups and restores, each a job run by a worker.

They belong to a tenant but are not the tenant's data: a backup never contains them and a
restore never touches them (the registry leaves this app's models out), so that restoring an
old backup keeps the list of backups, including the one that undoes the restore.
"""

import uuid

from django.conf import settings
from django.db import models

from tenants.models import Tenant

# After the name of a stored backup encrypted at rest with age.
ENCRYPTED_SUFFIX = ".age"


class Trigger(models.TextChoices):
    PAGE = "page", "Admin page"
    API = "api", "API"
    COMMAND = "command", "Command"
    SCHEDULE = "schedule", "Schedule"
    BEFORE_RESTORE = "before_restore", "Before restore"


# Triggers a person chose: these count towards the tenant's daily limit and notify by email.
BY_HAND = (Trigger.PAGE, Trigger.API, Trigger.COMMAND)


# Not tenant data: the backup service's own records of a tenant (its backups, restores, drills,
# schedule and alerts) describe backups; a backup of them would hold itself.
SERVICE_RECORD = "the backup service's own record of the tenant's backups, not tenant data"


class Job(models.Model):
    """What every job shares: who asked, when it ran, how far it is, and the lease that tells a
    live worker from a dead one (`backup.stored.leases`)."""

    backup_out_of_scope = SERVICE_RECORD

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
    # When the task backend accepted the job (`backup.stored.tasks.hand_over`); still empty a
    # while after creation, the hand-over was lost (a scheduler killed, Redis away).
    enqueued_at = models.DateTimeField(null=True, blank=True)

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
    # The latest the retention rules keep it (its maximum age); None: kept until deleted.
    expires_at = models.DateTimeField(null=True, blank=True)
    # The slot (the instant of the schedule's local time) a scheduled backup was made for: one
    # backup per tenant and slot, whichever scheduler asked first.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    keep = models.BooleanField(default=False)  # never pruned by the retention rules

    class Meta:
        ordering = ["-created_at"]
        # The scheduler's pass looks for queued jobs by status and age each minute.
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "scheduled_for"], name="one_backup_per_slot")
        ]

    def __str__(self) -> str:
        return f"backup {self.id} of {self.tenant_id} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def encrypted(self) -> bool:
        """Encrypted at rest with age (`backup.stored.keys`): its storage name says so."""
        return self.storage_name.endswith(ENCRYPTED_SUFFIX)

    @property
    def kind(self) -> str:
        """What the stored file holds, as a person reads it."""
        if self.options.get("include_files"):
            return "a ZIP archive of the JSON and the attachment files"
        return "zstd-compressed JSON"

    @property
    def last_drill(self) -> "Drill | None":
        """The backup's latest restore drill (from `prefetch_related("drills")` when a list
        prefetched them)."""
        drills = sorted(self.drills.all(), key=lambda d: d.created_at, reverse=True)
        return drills[0] if drills else None


class Drill(Job):
    """A restore drill: the stored backup restored as a new tenant in a transaction that is
    rolled back, each table's restored rows counted against the backup's statistics."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Verifying"
        PASSED = "passed", "Verified"
        FAILED = "failed", "Verification failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="backup_drills")
    backup = models.ForeignKey(StoredBackup, on_delete=models.CASCADE, related_name="drills")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    restored = models.JSONField(default=dict)  # rows per table, as restored
    problems = models.JSONField(default=list)  # what did not match, as sentences

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"drill {self.id} of backup {self.backup_id} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class Schedule(models.Model):
    """A tenant's automatic backups: when (a local time in the tenant's time zone, daily or on
    one day of the week), with which options, whether each is drilled, and how long backups are
    kept. `next_run_at` is the next slot plus the tenant's stable offset within
    `BACKUP_SCHEDULE_WINDOW_MINUTES`: the one column the scheduler's pass filters on."""

    backup_out_of_scope = SERVICE_RECORD

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    tenant = models.OneToOneField(
        Tenant, primary_key=True, on_delete=models.CASCADE, related_name="backup_schedule"
    )
    enabled = models.BooleanField(default=True)
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default="daily")
    weekday = models.PositiveSmallIntegerField(null=True, blank=True)  # 0 Monday .. 6 Sunday
    time = models.TimeField()  # local time in `timezone`
    timezone = models.CharField(max_length=64)  # an IANA name
    options = models.JSONField(default=dict)  # ExportOptions as a dict
    drill = models.BooleanField(default=True)
    keep_last = models.PositiveIntegerField(default=7)
    keep_monthly = models.PositiveIntegerField(default=12)
    max_age_days = models.PositiveIntegerField(default=365)
    next_slot_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_slot_at = models.DateTimeField(null=True, blank=True)  # the last slot enqueued
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["enabled", "next_run_at"])]

    def __str__(self) -> str:
        return f"backup schedule of {self.tenant_id}"


class Alert(models.Model):
    """Something about a tenant's automatic backups that someone must look at: raised once per
    tenant, kind and key (a slot or a backup), emailed to the tenant's owners when raised, shown
    until a later scheduled backup succeeds (`resolved_at`)."""

    backup_out_of_scope = SERVICE_RECORD

    class Kind(models.TextChoices):
        BACKUP_FAILED = "backup_failed", "Scheduled backup failed"
        DRILL_FAILED = "drill_failed", "Restore drill failed"
        MISSED = "missed", "Slot passed without a backup"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="backup_alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=64)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "key"], name="one_alert_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.tenant_id}: {self.message}"


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
