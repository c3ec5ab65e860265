"""The stored-backup service (`backup.stored`) in this process: jobs run by the ImmediateBackend
when the transaction that asked for them commits (`run_jobs`).

Bad input and faults: the daily limit, deleting a running backup, restoring a failed one or a
file altered in storage, a disk that refuses writes; each gets a clear error and changes
nothing. Also the undo backup before a restore, tenant isolation, emails and the audit trail.
"""

import datetime as dt
import io
import resource
import secrets
import signal

import pytest
import zstandard
from django.core import mail
from django.utils import timezone

from backup.errors import BackupNotFound, DailyLimitReached, JobActive, NotRestorable
from backup.export import ExportOptions
from backup.models import Restore, StoredBackup, Trigger
from backup.registry import registry
from backup.restore import ImportOptions, Mode
from backup.stored import links, storage
from backup.stored.backups import backups_of, delete_backup, get_backup, request_backup, run_backup
from backup.stored.leases import worker_id
from backup.stored.restores import confirm_restore, get_restore, request_restore
from tenants.models import AuditLog, MeterReading, Tenant, Vehicle

from . import factories as f
from .backup_support import populate, snapshot, tenant_snapshot
from .factories.auth import PASSWORD
from .processes import files_under

pytestmark = pytest.mark.django_db
Status = StoredBackup.Status
SOFT_DELETED = ("vehicle", "work_order", "part", "profile")


@pytest.fixture
def tenant():
    tenant = f.TenantFactory(name="North Pit", slug="north-pit")
    populate(tenant)
    return tenant


@pytest.fixture
def other():
    other = f.TenantFactory(name="South Quarry", slug="south-quarry")
    populate(other)
    return other


@pytest.fixture
def owner(tenant):
    user = f.UserFactory()
    f.MembershipFactory(tenant=tenant, user=user, role="owner")
    return user


def make(tenant: Tenant, run_jobs, *, user=None, trigger=Trigger.COMMAND, **options):
    with run_jobs():
        backup = request_backup(
            tenant, user=user, trigger=trigger, options=ExportOptions(**options)
        )
    backup.refresh_from_db()
    return backup


def restore(tenant: Tenant, backup: StoredBackup, run_jobs, mode: str, *, user=None, **kw):
    """Ask for the restore, and confirm it once previewed; the restore as it ends."""
    options = ImportOptions(mode=Mode(mode), new_tenant_slug=kw.pop("slug", ""))
    trigger = kw.pop("trigger", Trigger.COMMAND)
    with run_jobs():
        job = request_restore(
            tenant, user=user, trigger=trigger, options=options, backup=backup, **kw
        )
    job.refresh_from_db()
    if job.status != Restore.Status.AWAITING_CONFIRMATION:
        return job
    with run_jobs():
        confirm_restore(job, user=user, confirmation=tenant.name)
    job.refresh_from_db()
    return job


def data_of(tenant: Tenant) -> dict:
    """The tenant's rows but its audit trail (where every operation is recorded) and its
    credentials' secrets (which never leave the database: a restore flags them instead)."""
    rows = tenant_snapshot(tenant)
    rows.pop("audit_log")
    for row in rows["integration_credential"]:
        del row["secret"], row["secret_needs_reentry"]
    return rows


def without_soft_deleted(tenant: Tenant) -> None:
    """Remove the tenant's soft-deleted rows (and what hangs on them) for good."""
    for spec in reversed(registry().tenant_tables):
        if spec.soft_delete:
            spec.model.objects.filter(tenant=tenant).exclude(**{spec.soft_delete: None}).delete()


def stored_file(backup_dir, backup: StoredBackup):
    return backup_dir / backup.storage_name


def actions(tenant: Tenant, since: dt.datetime) -> list[str]:
    """The backup entries of the tenant's audit trail since then (populate() made older ones)."""
    entries = AuditLog.objects.filter(
        tenant=tenant, action__startswith="backup.", created_at__gte=since
    )
    return list(entries.order_by("created_at").values_list("action", flat=True))


def file_state(backup_dir) -> dict:
    return {p: p.read_bytes() for p in files_under(backup_dir)}


# -- the daily limit -----------------------------------------------------------------------------


def test_the_daily_limit_counts_backups_made_by_hand_in_the_last_24_hours(
    settings, tenant, other, owner
):
    settings.BACKUP_DAILY_LIMIT = 3
    now = timezone.now()
    by_hand = [
        request_backup(tenant, user=owner, trigger=trigger)
        for trigger in (Trigger.PAGE, Trigger.API, Trigger.COMMAND)
    ]
    # Neither scheduled backups nor those made before a restore count.
    for trigger in (Trigger.SCHEDULE, Trigger.SCHEDULE, Trigger.BEFORE_RESTORE):
        request_backup(tenant, user=None, trigger=trigger)
    for backup, hours in zip(by_hand, (23, 2, 1), strict=True):
        StoredBackup.objects.filter(pk=backup.pk).update(created_at=now - dt.timedelta(hours=hours))
    before = snapshot()

    with pytest.raises(DailyLimitReached) as refused:
        request_backup(tenant, user=owner, trigger=Trigger.PAGE)

    # The oldest leaves the window in an hour: that is when the next one can be made.
    frees_at = now - dt.timedelta(hours=23) + dt.timedelta(days=1)
    assert 3599 <= refused.value.retry_after <= 3601
    assert refused.value.code == "daily_limit_reached"
    assert refused.value.message == (
        "Tenant 'north-pit' made 3 backups in the last 24 hours, the most allowed "
        f"(BACKUP_DAILY_LIMIT = 3); the next one can be made from {frees_at:%Y-%m-%d %H:%M} "
        "UTC, in 1 h 0 min."
    )
    assert snapshot() == before
    for trigger in (Trigger.API, Trigger.COMMAND):
        with pytest.raises(DailyLimitReached):
            request_backup(tenant, user=owner, trigger=trigger)
    # A schedule, and another tenant, are not held back.
    assert request_backup(tenant, user=None, trigger=Trigger.SCHEDULE).status == Status.QUEUED
    assert request_backup(other, user=None, trigger=Trigger.PAGE).status == Status.QUEUED

    # A rolling day: once the oldest is more than 24 hours old, one more may be made.
    StoredBackup.objects.filter(pk=by_hand[0].pk).update(
        created_at=now - dt.timedelta(days=1, seconds=1)
    )
    assert request_backup(tenant, user=owner, trigger=Trigger.PAGE).status == Status.QUEUED
    with pytest.raises(DailyLimitReached) as again:
        request_backup(tenant, user=owner, trigger=Trigger.PAGE)
    # The oldest in the window now is two hours old: 22 hours to wait.
    assert 22 * 3600 - 1 <= again.value.retry_after <= 22 * 3600 + 1
    assert again.value.message.endswith(", in 22 h 0 min.")


# -- deleting and restoring what cannot be -------------------------------------------------------


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_a_queued_or_running_backup_cannot_be_deleted(tenant, owner, backup_dir, run_jobs, status):
    done = make(tenant, run_jobs)
    backup = request_backup(tenant, user=owner, trigger=Trigger.PAGE)
    if status == Status.RUNNING:  # in this process, alive: the sweep leaves it running
        StoredBackup.objects.filter(pk=backup.pk).update(
            status=status, worker=worker_id(), started_at=timezone.now()
        )
    backup = get_backup(tenant, backup.id)
    before, files = snapshot(), file_state(backup_dir)

    with pytest.raises(JobActive) as refused:
        delete_backup(backup, user=owner)

    assert refused.value.message == (
        f"Backup {backup.id} is {status}: wait until it has finished, then delete it."
    )
    assert snapshot() == before
    assert file_state(backup_dir) == files
    assert stored_file(backup_dir, done).exists()


def test_a_failed_backup_cannot_be_restored_nor_downloaded(tenant, owner, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_SPOOL_DIR = str(blocker / "spool")
    backup = request_backup(tenant, user=owner, trigger=Trigger.PAGE)
    run_backup(backup.id)
    backup.refresh_from_db()
    assert backup.status == Status.FAILED
    before = snapshot()

    with pytest.raises(NotRestorable) as refused:
        request_restore(
            tenant, user=owner, trigger=Trigger.PAGE, options=ImportOptions(), backup=backup
        )
    assert refused.value.message == (
        f"Backup {backup.id} is failed: only a backup that succeeded can be restored."
    )
    with pytest.raises(NotRestorable):
        links.issue(backup, user=owner, password=PASSWORD, check_password=True)
    assert snapshot() == before


# -- a file altered in storage -------------------------------------------------------------------


def rewrite(path, tenant: Tenant) -> None:
    """Change a vehicle's serial number in the stored file, which stays a valid backup."""
    vehicle = Vehicle.objects.filter(tenant=tenant, deleted_at=None).first()
    old, new = vehicle.serial_number.encode(), b"CHANGED-IN-STORAGE"
    document = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes())).read()
    assert old in document
    path.write_bytes(zstandard.ZstdCompressor().compress(document.replace(old, new)))


def sha256_refusal(backup: StoredBackup) -> str:
    return f"The file of backup {backup.id} has changed in storage since it was made (SHA-256 "


def test_a_backup_whose_file_was_changed_in_storage_is_not_restored(tenant, run_jobs, backup_dir):
    backup = make(tenant, run_jobs)
    rewrite(stored_file(backup_dir, backup), tenant)
    before = data_of(tenant)

    job = restore(tenant, backup, run_jobs, "replace")

    assert job.status == Restore.Status.FAILED
    assert job.error.startswith(sha256_refusal(backup))
    assert job.error.endswith(f"recorded {backup.sha256}): it is not restored.")
    assert job.undo_backup is None
    assert data_of(tenant) == before


def test_a_backup_whose_file_has_a_byte_flipped_in_storage_is_not_restored(
    tenant, run_jobs, backup_dir
):
    backup = make(tenant, run_jobs)
    path = stored_file(backup_dir, backup)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = data_of(tenant)

    job = restore(tenant, backup, run_jobs, "merge")

    assert job.status == Restore.Status.FAILED
    assert job.error.startswith(sha256_refusal(backup))
    assert data_of(tenant) == before


def test_a_file_changed_after_its_preview_is_not_imported(tenant, run_jobs, backup_dir):
    backup = make(tenant, run_jobs)
    with run_jobs():
        job = request_restore(
            tenant, user=None, trigger=Trigger.COMMAND, options=ImportOptions(), backup=backup
        )
    job.refresh_from_db()
    assert job.status == Restore.Status.AWAITING_CONFIRMATION
    rewrite(stored_file(backup_dir, backup), tenant)
    before = data_of(tenant)

    with run_jobs():
        confirm_restore(job, user=None)

    job.refresh_from_db()
    assert job.status == Restore.Status.FAILED
    assert job.error.startswith(sha256_refusal(backup))
    assert data_of(tenant) == before


# -- the undo backup -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_the_backup_made_before_a_restore_undoes_it(tenant, owner, run_jobs, mode):
    without_soft_deleted(tenant)
    backup = make(tenant, run_jobs)
    # The tenant moves on; the restore of the older backup then takes it back.
    vehicle = Vehicle.objects.filter(tenant=tenant).first()
    Vehicle.objects.filter(pk=vehicle.pk).update(fleet_number="renamed since")
    f.MeterReadingFactory(tenant=tenant, vehicle=vehicle)
    MeterReading.objects.filter(tenant=tenant).order_by("pk").first().delete()
    current = data_of(tenant)

    job = restore(tenant, backup, run_jobs, mode, user=owner)

    assert job.status == Restore.Status.SUCCEEDED, job.error
    assert data_of(tenant) != current
    undo = job.undo_backup
    assert undo.status == Status.SUCCEEDED
    assert undo.trigger == Trigger.BEFORE_RESTORE and undo.created_by == owner
    assert undo.created_at < job.finished_at
    assert any("can be undone" in notice for notice in job.preview["notices"])

    undone = restore(tenant, undo, run_jobs, "replace", user=owner, undo=False)

    assert undone.status == Restore.Status.SUCCEEDED, undone.error
    assert data_of(tenant) == current


def test_the_backup_made_before_a_replace_keeps_the_soft_deleted_rows(tenant, run_jobs):
    current = data_of(tenant)
    assert all(
        any(row["deleted_at"] for row in current[name]) for name in SOFT_DELETED
    )  # populate() made some
    backup = make(tenant, run_jobs)  # without them: the replace removes them

    job = restore(tenant, backup, run_jobs, "replace")
    assert job.status == Restore.Status.SUCCEEDED, job.error
    undone = restore(tenant, job.undo_backup, run_jobs, "replace", undo=False)

    assert undone.status == Restore.Status.SUCCEEDED, undone.error
    assert data_of(tenant) == current


def test_a_new_tenant_restore_makes_no_undo_backup(tenant, run_jobs):
    backup = make(tenant, run_jobs)
    job = restore(tenant, backup, run_jobs, "new_tenant", slug="north-pit-copy")
    assert job.status == Restore.Status.SUCCEEDED, job.error
    assert job.undo_backup is None
    assert not StoredBackup.objects.filter(trigger=Trigger.BEFORE_RESTORE).exists()


# -- a disk that refuses writes ------------------------------------------------------------------


def bulky(tenant: Tenant, kilobytes: int) -> None:
    """Text that does not compress, so that the backup is at least that big."""
    vehicle = Vehicle.objects.filter(tenant=tenant).first()
    f.NotificationFactory(
        tenant=tenant, vehicle=vehicle, body=secrets.token_urlsafe(kilobytes * 1024)
    )


@pytest.fixture
def file_size_limit():
    """Files this process writes may grow to `limit` bytes only, as on a disk that is full
    there (the kernel refuses the write past it, whoever the user: root too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, handler)


def test_a_full_spool_disk_fails_the_backup_with_a_clear_error_and_leaves_no_file(
    tenant, owner, run_jobs, backup_dir, file_size_limit
):
    bulky(tenant, 400)
    before = data_of(tenant)
    file_size_limit(64 * 1024)  # the export writes well past it
    backup = make(tenant, run_jobs, user=owner, trigger=Trigger.PAGE)
    file_size_limit(resource.RLIM_INFINITY)

    assert backup.status == Status.FAILED
    assert backup.error == (
        "The backup could not be written to the spool directory (BACKUP_SPOOL_DIR): File too large."
    )
    assert backup.size is None and backup.sha256 == ""
    assert files_under(storage.spool_dir()) == []
    assert files_under(backup_dir) == []
    assert data_of(tenant) == before


def test_a_storage_that_cannot_be_written_fails_the_backup_and_leaves_no_file(
    tenant, run_jobs, settings, tmp_path
):
    # The storage's directory would be inside a regular file: no user, root included, can
    # make it.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    backups = settings.STORAGES["backups"]
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {**backups, "OPTIONS": {**backups["OPTIONS"], "location": str(blocker / "b")}},
    }
    before = data_of(tenant)

    backup = make(tenant, run_jobs)

    assert backup.status == Status.FAILED
    assert backup.error.startswith(f"The backup storage refused the file {backup.storage_name}: ")
    assert "Not a directory" in backup.error
    assert "could not be removed" not in backup.error  # there is nothing to remove
    assert files_under(storage.spool_dir()) == []
    assert blocker.read_text() == ""
    assert data_of(tenant) == before


def test_a_spool_directory_that_cannot_be_made_fails_the_backup(
    tenant, run_jobs, settings, tmp_path, backup_dir
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_SPOOL_DIR = str(blocker / "spool")

    backup = make(tenant, run_jobs)

    # Failed, not left "running" forever by a sweep that fails in turn.
    assert backup.status == Status.FAILED
    assert backup.error == "The spool directory (BACKUP_SPOOL_DIR) cannot be used: Not a directory."
    assert backup.finished_at is not None
    assert files_under(backup_dir) == []


# -- tenant isolation ----------------------------------------------------------------------------


def test_a_restore_of_one_tenant_never_touches_another(tenant, other, owner, run_jobs):
    backup = make(tenant, run_jobs)
    f.VehicleFactory(tenant=tenant)  # so that the replace has something to do
    other_before = tenant_snapshot(other)
    other_backups = list(StoredBackup.objects.filter(tenant=other).values())

    job = restore(tenant, backup, run_jobs, "replace", user=owner)

    assert job.status == Restore.Status.SUCCEEDED, job.error
    assert job.report["totals"]["delete"] > 0
    assert tenant_snapshot(other) == other_before
    assert list(StoredBackup.objects.filter(tenant=other).values()) == other_backups

    # Another tenant's backup or restore, asked for by id, is not found (as an unknown id).
    for lookup, job_id, kind in (
        (get_backup, backup.id, "stored backup"),
        (get_backup, job.undo_backup_id, "stored backup"),
        (get_restore, job.id, "restore"),
        (get_backup, "not-a-uuid", "stored backup"),
    ):
        with pytest.raises(BackupNotFound) as missing:
            lookup(other, job_id)
        assert missing.value.message == f"Tenant 'south-quarry' has no {kind} with id {job_id}."
    assert list(backups_of(other)) == []


def test_another_tenants_backup_cannot_be_restored_even_as_a_new_tenant(tenant, other, run_jobs):
    backup = make(tenant, run_jobs)
    before = snapshot()
    for mode in ("new_tenant", "merge", "replace"):
        options = ImportOptions(mode=Mode(mode), new_tenant_slug="taken-over")
        with pytest.raises(BackupNotFound) as refused:
            request_restore(other, user=None, trigger=Trigger.API, options=options, backup=backup)
        assert refused.value.message == (
            f"Tenant 'south-quarry' has no stored backup with id {backup.id}."
        )
    assert snapshot() == before


# -- emails --------------------------------------------------------------------------------------


def test_only_backups_and_restores_asked_for_on_the_page_or_the_api_send_emails(
    tenant, owner, run_jobs, settings
):
    settings.BACKUP_SITE_URL = "https://backups.example.com/"
    mail.outbox.clear()
    for trigger in (Trigger.COMMAND, Trigger.SCHEDULE):
        assert make(tenant, run_jobs, user=owner, trigger=trigger).status == Status.SUCCEEDED
    assert mail.outbox == []

    backup = make(tenant, run_jobs, user=owner, trigger=Trigger.PAGE)
    [ready] = mail.outbox
    assert ready.to == [owner.email]
    assert ready.subject == "Backup of North Pit is ready"
    assert f"{backup.total_rows:,} rows, {backup.size:,} bytes" in ready.body
    assert f"https://backups.example.com/admin/backup/?tenant={tenant.pk}" in ready.body

    mail.outbox.clear()
    job = restore(tenant, backup, run_jobs, "merge", user=owner, trigger=Trigger.API)
    assert job.status == Restore.Status.SUCCEEDED, job.error
    assert [m.subject for m in mail.outbox] == [
        "Restore into North Pit: preview ready",
        "Restore into North Pit finished",
    ]
    assert f"kept in backup {job.undo_backup_id}" in mail.outbox[1].body
    assert {tuple(m.to) for m in mail.outbox} == {(owner.email,)}


def test_a_failed_backup_asked_for_on_the_api_sends_the_error(
    tenant, owner, run_jobs, settings, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_SPOOL_DIR = str(blocker / "spool")
    mail.outbox.clear()
    backup = make(tenant, run_jobs, user=owner, trigger=Trigger.API)
    [failed] = mail.outbox
    assert failed.subject == "Backup of North Pit failed"
    assert backup.error in failed.body


# -- the audit trail -----------------------------------------------------------------------------


def test_every_step_of_a_stored_backup_is_audited(tenant, owner, run_jobs):
    start = timezone.now()
    backup = make(tenant, run_jobs, user=owner, trigger=Trigger.PAGE)
    token, _ = links.issue(backup, user=owner, password=PASSWORD, check_password=True)
    links.open_download(token, backup=backup, user=owner).close()
    job = restore(tenant, backup, run_jobs, "merge", user=owner, trigger=Trigger.PAGE)
    assert job.status == Restore.Status.SUCCEEDED, job.error
    delete_backup(job.undo_backup, user=owner)

    assert actions(tenant, start) == [
        "backup.stored.created",
        "backup.export",  # the export engine's own entry
        "backup.stored.finished",
        "backup.stored.link_issued",
        "backup.stored.downloaded",
        "backup.restore.requested",
        "backup.preview",
        "backup.restore.confirmed",
        "backup.stored.created",  # the undo backup, made by the import's worker
        "backup.export",
        "backup.stored.finished",
        "backup.import",
        "backup.restore.finished",
        "backup.stored.deleted",
    ]
    entries = AuditLog.objects.filter(tenant=tenant, created_at__gte=start)
    assert {e.actor_email for e in entries} == {owner.email}
    created = entries.filter(action="backup.stored.created").earliest("created_at")
    assert created.details == {
        "backup": str(backup.id),
        "trigger": "page",
        "options": {"include_audit_logs": False, "include_deleted": False, "include_files": False},
    }
    finished = entries.filter(action="backup.stored.finished").earliest("created_at")
    assert finished.details == {
        "backup": str(backup.id),
        "rows": backup.total_rows,
        "size": backup.size,
        "sha256": backup.sha256,
        "seconds": backup.seconds,
    }
    downloaded = entries.get(action="backup.stored.downloaded")
    assert downloaded.actor == owner and downloaded.details["backup"] == str(backup.id)
    restored = entries.get(action="backup.restore.finished")
    assert restored.details["restore"] == str(job.id)
    assert restored.details["undo_backup"] == str(job.undo_backup_id)
    deleted = entries.get(action="backup.stored.deleted")
    assert deleted.details["backup"] == str(job.undo_backup_id)


def test_a_failed_backup_is_audited_with_why(tenant, run_jobs, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.BACKUP_SPOOL_DIR = str(blocker / "spool")
    start = timezone.now()
    backup = make(tenant, run_jobs)
    assert actions(tenant, start) == ["backup.stored.created", "backup.stored.failed"]
    failed = AuditLog.objects.get(tenant=tenant, action="backup.stored.failed")
    assert failed.details == {"backup": str(backup.id), "error": backup.error}
