"""The commands of stored backups (list, create, download, delete, restore) and import_tenant's
--yes without a preview, its progress and its undo backup: exit codes, output, and nothing
changed when a command refuses.

Jobs run in the test process (the ImmediateBackend). Commands that wait for a job poll its row
after enqueueing it, so their tests run outside a test transaction (`transaction=True`): the
job is enqueued, and run, as soon as the command's own write commits."""

import datetime as dt
import hashlib
import io
import json
import sys
import uuid

import pytest
import zstandard
from django.core.management import call_command
from django.core.management.base import CommandError

from backup.management.commands import _progress
from backup.models import Restore, StoredBackup
from backup.statistics import tenant_statistics
from backup.stored import backups
from tenants.models import AuditLog, MeterReading, Site, Tenant

from . import factories as f
from .backup_support import export_bytes, parse, snapshot, tenant_snapshot
from .backup_support import without_secrets as no_secrets

pytestmark = pytest.mark.django_db
after_commit = pytest.mark.django_db(transaction=True)


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's would."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def backup(tenant):
    return backups.make_backup_now(tenant, user=None, trigger="command")


def run(*args, stderr=None):
    """The command's stdout and stderr."""
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args, returncode):
    """The command's error (and its stderr), which must exit with `returncode`."""
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=io.StringIO(), stderr=err)
    assert caught.value.returncode == returncode, str(caught.value)
    assert "Traceback" not in err.getvalue()
    return str(caught.value), err.getvalue()


def files(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def failed_backup(tenant):
    made = backups.request_backup(tenant, user=None, trigger="command")  # queued, never run
    backups.fail(made, "The disk was full.")
    return made


def data_of(tenant):
    """The tenant's rows but its audit log, which records even what was refused."""
    data = tenant_snapshot(tenant)
    del data["audit_log"]
    return data


def exported_rows(tenant, **options):
    return sum(len(rows) for rows in parse(export_bytes(tenant, **options))["tenant_data"].values())


def actions(tenant, prefix):
    return list(
        AuditLog.objects.filter(tenant=tenant, action__startswith=prefix)
        .order_by("created_at", "pk")
        .values_list("action", flat=True)
    )


# backup_list


def test_list_is_newest_first_with_every_column(tenant, other, backup):
    failed = failed_backup(tenant)
    elsewhere = backups.make_backup_now(other, user=None, trigger="command")
    out, _err = run("backup_list", "north-pit")
    header, *lines = out.splitlines()
    assert header.split() == [
        *("id", "created", "(UTC)", "trigger", "status", "verified", "size", "rows", "expires"),
        "who",
    ]
    assert [line.split()[0] for line in lines] == [str(failed.id), str(backup.id)]
    assert lines[0].split()[3:] == [
        "command",
        "failed",
        "-",
        "-",
        "-",
        "-",
        "-",
        "The",
        "disk",
        "was",
        "full.",
    ]
    created = f"{backup.created_at:%Y-%m-%d %H:%M:%S}"  # stored in UTC
    assert lines[1].split()[1:4] == [*created.split(), "command"]
    assert lines[1].split()[4:6] == ["succeeded", "-"]  # made by hand: no drill
    assert f"{backup.total_rows:,}" in lines[1]
    assert f"{backup.created_at + dt.timedelta(days=365):%Y-%m-%d}" in lines[1]
    assert str(elsewhere.id) not in out


def test_list_as_json(tenant, backup):
    owner = f.UserFactory(email="owner@example.com")
    StoredBackup.objects.filter(pk=backup.pk).update(created_by=owner)
    failed = failed_backup(tenant)
    out, _err = run("backup_list", "north-pit", "--json")
    listed = json.loads(out)
    assert [item["id"] for item in listed] == [str(failed.id), str(backup.id)]
    made = listed[1]
    assert made["status"] == "succeeded" and made["trigger"] == "command"
    assert made["size"] == backup.size and made["sha256"] == backup.sha256
    assert made["rows"] == backup.total_rows == sum(backup.rows.values()) > 0
    assert made["rows_per_table"] == backup.rows
    assert made["created_by"] == "owner@example.com"
    assert made["created_at"].endswith("+00:00")
    assert listed[0]["error"] == "The disk was full." and listed[0]["size"] is None


def test_list_of_a_tenant_without_backups(tenant):
    out, _err = run("backup_list", "north-pit")
    assert out == "Tenant 'north-pit' has no stored backups.\n"
    out, _err = run("backup_list", "north-pit", "--json")
    assert json.loads(out) == []


# backup_create


def test_create_queues_the_backup_and_prints_its_id(tenant):
    out, _err = run("backup_create", "north-pit", "--include-deleted")
    made = StoredBackup.objects.get()
    assert f"Backup {made.id} of tenant 'north-pit' requested." in out
    assert (made.status, made.trigger, made.created_by) == ("queued", "command", None)
    assert made.options == {
        "include_audit_logs": False,
        "include_deleted": True,
        "include_files": False,
    }
    assert actions(tenant, "backup.stored.") == ["backup.stored.created"]


@after_commit
def test_create_and_wait_until_it_succeeded(tenant, backup_dir):
    out, err = run("backup_create", "north-pit", "--include-audit-logs", "--wait")
    made = StoredBackup.objects.get()
    assert made.status == "succeeded"
    assert f"Backup {made.id} done: {made.total_rows:,} rows, {made.size:,} bytes" in out
    assert made.options["include_audit_logs"] is True
    assert made.rows["audit_log"] > 0
    assert (backup_dir / made.storage_name).stat().st_size == made.size
    assert err == ""  # progress only on a terminal


@after_commit
def test_create_and_wait_for_a_backup_that_fails(tenant, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage's directory should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            **settings.STORAGES["backups"],
            "OPTIONS": {**settings.STORAGES["backups"]["OPTIONS"], "location": str(blocker / "b")},
        },
    }
    message, _err = refused("backup_create", "north-pit", "--wait", returncode=1)
    made = StoredBackup.objects.get()
    assert made.status == "failed"
    assert message.startswith(f"Backup {made.id} failed: The backup storage refused the file")
    assert files(tmp_path / "spool") == []


def test_waiting_shows_a_progress_bar_on_a_terminal(tenant, settings, monkeypatch):
    """The job waits in a queue that nothing runs; the test is the worker: it runs the job when
    the command first sleeps between two looks at the row."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    monkeypatch.setattr(_progress, "UNCLAIMED_HINT_SECONDS", 0.0)
    ran = []

    def worker_runs_the_job(seconds):
        ran.append(backups.run_backup(StoredBackup.objects.get().pk))

    monkeypatch.setattr(_progress, "sleep", worker_runs_the_job)
    terminal = Terminal()
    out, err = run("backup_create", "north-pit", "--wait", stderr=terminal)
    assert len(ran) == 1 and ran[0].status == "succeeded"
    assert "done:" in out
    assert "backup" in err and "rows" in err  # the bar, drawn while the job was queued
    assert "No worker has picked up job" in err and "manage.py db_worker" in err


def test_create_over_the_daily_limit_is_refused(tenant, settings):
    settings.BACKUP_DAILY_LIMIT = 1
    run("backup_create", "north-pit")
    before = snapshot()
    message, _err = refused("backup_create", "north-pit", returncode=5)
    assert "BACKUP_DAILY_LIMIT = 1" in message and "the next one can be made from" in message
    assert snapshot() == before


# backup_download


def test_download_writes_the_file_as_stored(tenant, backup, tmp_path):
    target = tmp_path / "out" / "north-pit.json.zst"
    target.parent.mkdir()
    out, _err = run("backup_download", "north-pit", str(backup.id), "-o", str(target))
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == backup.sha256
    assert len(data) == backup.size
    document = parse(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read())
    assert document["metadata"]["tenant"]["slug"] == "north-pit"
    assert f"written to {target}" in out and "SHA-256 checked" in out
    assert files(target.parent) == ["north-pit.json.zst"]  # no temporary file left
    assert target.stat().st_mode & 0o077 == 0  # readable by its owner only
    downloaded = AuditLog.objects.get(action="backup.stored.downloaded")
    assert downloaded.details == {
        "backup": str(backup.id),
        "size": backup.size,
        "sha256": backup.sha256,
        "by": "command",
    }


def test_download_to_stdout(tenant, backup, capsysbinary):
    _out, err = run("backup_download", "north-pit", str(backup.id), "-o", "-")
    data = capsysbinary.readouterr().out
    assert hashlib.sha256(data).hexdigest() == backup.sha256
    assert "written to stdout" in err  # the summary stays out of the file


@pytest.mark.parametrize("output", ["file", "-"])
def test_a_file_changed_in_storage_is_not_delivered(
    tenant, backup, backup_dir, tmp_path, capsysbinary, output
):
    stored = backup_dir / backup.storage_name
    stored.write_bytes(stored.read_bytes()[:-1] + b"\0")
    target = tmp_path / "out" / "backup.json.zst"
    target.parent.mkdir()
    target.write_bytes(b"the file that was there")
    message, _err = refused(
        "backup_download",
        "north-pit",
        str(backup.id),
        "-o",
        str(target) if output == "file" else "-",
        returncode=1,
    )
    assert "is not the one that was made" in message and backup.sha256 in message
    assert "nothing was written" in message
    assert target.read_bytes() == b"the file that was there"
    assert files(target.parent) == ["backup.json.zst"]
    assert capsysbinary.readouterr().out == b""


def test_download_of_a_failed_backup_is_refused(tenant, tmp_path):
    made = failed_backup(tenant)
    before = snapshot()
    message, _err = refused(
        "backup_download", "north-pit", str(made.id), "-o", str(tmp_path / "x"), returncode=5
    )
    assert message == f"Backup {made.id} is failed: it has no file to download."
    assert snapshot() == before and not (tmp_path / "x").exists()


def test_download_into_a_missing_directory_names_it(tenant, backup, tmp_path):
    target = tmp_path / "missing" / "backup.json.zst"
    message, _err = refused(
        "backup_download", "north-pit", str(backup.id), "-o", str(target), returncode=1
    )
    assert message.startswith(f"Cannot write {target}: No such file or directory")


# backup_delete


def test_delete_with_yes(tenant, backup, backup_dir):
    out, _err = run("backup_delete", "north-pit", str(backup.id), "--yes")
    assert out == f"Backup {backup.id} of tenant 'north-pit' deleted.\n"
    assert not StoredBackup.objects.exists()
    assert files(backup_dir) == []
    assert actions(tenant, "backup.stored.deleted") == ["backup.stored.deleted"]


def test_delete_asks_on_a_terminal(tenant, backup, backup_dir, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal("no\n"))
    before, stored = snapshot(), files(backup_dir)
    message, _err = refused("backup_delete", "north-pit", str(backup.id), returncode=5)
    assert message == "Not confirmed: nothing was deleted."
    assert snapshot() == before and files(backup_dir) == stored

    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    out, _err = run("backup_delete", "north-pit", str(backup.id))
    assert f"This will delete backup {backup.id} of 'north-pit' made" in out
    assert "deleted." in out and not StoredBackup.objects.exists()


def test_delete_without_terminal_and_without_yes_refuses(tenant, backup, backup_dir):
    before, stored = snapshot(), files(backup_dir)
    message, _err = refused("backup_delete", "north-pit", str(backup.id), returncode=5)
    assert message == "Not confirmed: run with --yes to delete a backup without a terminal."
    assert snapshot() == before and files(backup_dir) == stored


def test_a_queued_backup_cannot_be_deleted(tenant):
    queued = backups.request_backup(tenant, user=None, trigger="command")
    before = snapshot()
    message, _err = refused("backup_delete", "north-pit", str(queued.id), "--yes", returncode=5)
    assert message == f"Backup {queued.id} is queued: wait until it has finished, then delete it."
    assert snapshot() == before


def test_a_failed_backup_can_be_deleted(tenant):
    made = failed_backup(tenant)
    run("backup_delete", "north-pit", str(made.id), "--yes")
    assert not StoredBackup.objects.exists()


# Unknown tenants and backups, for every command


COMMANDS = [
    ("backup_list", []),
    ("backup_create", ["--wait"]),
    ("backup_download", ["ID", "-o", "OUT"]),
    ("backup_delete", ["ID", "--yes"]),
    ("backup_restore", ["ID", "--yes"]),
]


def arguments(rest, backup_id, tmp_path):
    out = str(tmp_path / "out.json.zst")
    return [backup_id if a == "ID" else out if a == "OUT" else a for a in rest]


@pytest.mark.parametrize(("name", "rest"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_unknown_tenant(tenant, backup, tmp_path, backup_dir, name, rest):
    before, stored = snapshot(), files(backup_dir)
    args = arguments(rest, str(backup.id), tmp_path)
    message, _err = refused(name, "no-such-pit", *args, returncode=5)
    assert message == "No tenant with slug or id 'no-such-pit'."
    assert snapshot() == before and files(backup_dir) == stored
    assert not (tmp_path / "out.json.zst").exists()


WITH_ID = [c for c in COMMANDS if "ID" in c[1]]


@pytest.mark.parametrize(("name", "rest"), WITH_ID, ids=[c[0] for c in WITH_ID])
@pytest.mark.parametrize("whose", ["other tenant's", "unknown", "malformed"])
def test_unknown_or_other_tenants_backup_is_not_found(
    tenant, other, tmp_path, backup_dir, name, rest, whose
):
    elsewhere = backups.make_backup_now(other, user=None, trigger="command")
    backup_id = {
        "other tenant's": str(elsewhere.id),
        "unknown": str(uuid.uuid4()),
        "malformed": "not-an-id",
    }[whose]
    before, stored = snapshot(), files(backup_dir)
    args = arguments(rest, backup_id, tmp_path)
    message, _err = refused(name, "north-pit", *args, returncode=2)
    assert message == f"Tenant 'north-pit' has no stored backup with id {backup_id}."
    assert snapshot() == before and files(backup_dir) == stored
    assert not (tmp_path / "out.json.zst").exists()


# backup_restore


@after_commit
def test_restore_merge_brings_back_what_was_deleted(tenant, backup):
    reading = MeterReading.objects.filter(tenant=tenant, vehicle__deleted_at__isnull=True).first()
    reading_id = reading.pk
    reading.delete()
    rows_before = exported_rows(tenant, include_deleted=True)
    out, err = run("backup_restore", "north-pit", str(backup.id), "--yes")
    restore = Restore.objects.get()
    assert (restore.status, restore.mode, restore.trigger) == ("succeeded", "merge", "command")
    assert MeterReading.objects.filter(pk=reading_id).exists()
    preview, report = out.split("Restored (merge)")
    assert "Preview (merge) of backup of 'north-pit' into 'north-pit':" in preview
    assert "costs one export" in preview  # the undo, said in the preview
    assert "meter_reading" in report
    total = next(line for line in report.splitlines() if line.strip().startswith("total"))
    assert total.split()[2] == "1"  # created
    undo = StoredBackup.objects.get(trigger="before_restore")
    assert (undo.status, undo.total_rows) == ("succeeded", rows_before)
    assert restore.undo_backup == undo
    assert f"Undo: backup {undo.id} holds the data from before this restore" in out
    assert "Restore into 'north-pit' done." in out
    assert err == ""


@after_commit
def test_restore_replace_with_yes_and_its_undo(tenant, backup):
    data = export_bytes(tenant)
    Site.objects.filter(tenant=tenant).update(name="Changed after the backup")
    changed = export_bytes(tenant)
    out, _err = run("backup_restore", "north-pit", str(backup.id), "--mode", "replace", "--yes")
    assert "Restored (replace)" in out
    assert no_secrets(parse(export_bytes(tenant))["tenant_data"]) == no_secrets(
        parse(data)["tenant_data"]
    )
    undo = StoredBackup.objects.get(trigger="before_restore")
    # The undo backup restores the data as it was before the restore.
    run("backup_restore", "north-pit", str(undo.id), "--mode", "replace", "--yes", "--no-undo")
    assert no_secrets(parse(export_bytes(tenant))["tenant_data"]) == no_secrets(
        parse(changed)["tenant_data"]
    )


@after_commit
def test_restore_replace_asks_for_the_tenants_name_on_a_terminal(tenant, backup, monkeypatch):
    Site.objects.filter(tenant=tenant).update(name="Renamed")
    before = data_of(tenant)
    monkeypatch.setattr(sys, "stdin", Terminal("north pit\n"))
    message, err = refused(
        "backup_restore", "north-pit", str(backup.id), "--mode", "replace", returncode=5
    )
    assert "type the tenant's name exactly to confirm" in message
    first = Restore.objects.get()
    assert first.status == "cancelled"
    assert f"Restore {first.id} cancelled: nothing was written." in err
    assert data_of(tenant) == before
    assert not StoredBackup.objects.filter(trigger="before_restore").exists()

    monkeypatch.setattr(sys, "stdin", Terminal("North Pit\n"))
    out, _err = run("backup_restore", "north-pit", str(backup.id), "--mode", "replace")
    assert "Type the tenant's name (North Pit) to continue:" in out
    assert "Restore into 'north-pit' done." in out
    assert not Site.objects.filter(tenant=tenant, name="Renamed").exists()


@after_commit
def test_restore_without_terminal_and_without_yes_refuses(tenant, backup):
    before = data_of(tenant)
    message, _err = refused("backup_restore", "north-pit", str(backup.id), returncode=5)
    assert message == "Not confirmed: run with --yes to restore without a terminal."
    assert Restore.objects.get().status == "cancelled"
    assert data_of(tenant) == before
    assert StoredBackup.objects.get() == backup  # no undo backup either


@after_commit
def test_restore_as_a_new_tenant(tenant, backup):
    out, _err = run(
        "backup_restore",
        "north-pit",
        str(backup.id),
        "--new-tenant",
        "north-pit-copy",
        "--name",
        "North Pit (copy)",
        "--yes",
    )
    copy = Tenant.objects.get(slug="north-pit-copy")
    assert copy.name == "North Pit (copy)"
    assert tenant_statistics(copy)["vehicle"] == backup.rows["vehicle"]
    assert "Restored (new_tenant) of backup of 'north-pit' into 'north-pit-copy':" in out
    assert "Restore into 'north-pit-copy' done." in out
    assert "Undo:" not in out  # nothing to undo in a new tenant
    assert not StoredBackup.objects.filter(trigger="before_restore").exists()


@after_commit
def test_restore_with_no_undo_stores_no_backup_first(tenant, backup):
    out, _err = run("backup_restore", "north-pit", str(backup.id), "--yes", "--no-undo")
    restore = Restore.objects.get()
    assert restore.status == "succeeded" and restore.undo is False
    assert restore.undo_backup is None and "Undo:" not in out
    assert "costs one export" not in out
    assert StoredBackup.objects.get() == backup


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_a_failed_backup_is_not_restored(tenant, mode):
    made = failed_backup(tenant)
    before = snapshot()
    message, _err = refused(
        "backup_restore", "north-pit", str(made.id), "--mode", mode, "--yes", returncode=5
    )
    assert message == (f"Backup {made.id} is failed: only a backup that succeeded can be restored.")
    assert snapshot() == before


@after_commit
def test_a_backup_changed_in_storage_fails_its_preview(tenant, backup, backup_dir):
    stored = backup_dir / backup.storage_name
    document = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored.read_bytes())).read()
    stored.write_bytes(zstandard.ZstdCompressor(level=19).compress(document))  # same data
    before = data_of(tenant)
    message, _err = refused(
        "backup_restore", "north-pit", str(backup.id), "--mode", "replace", "--yes", returncode=5
    )
    restore = Restore.objects.get()
    assert restore.status == "failed"
    assert message.startswith(f"Restore {restore.id} failed: The file of backup {backup.id}")
    assert data_of(tenant) == before
    assert StoredBackup.objects.get() == backup


@after_commit
def test_a_restore_whose_preview_finds_problems_lists_them(tenant, backup, backup_dir):
    document = parse(export_bytes(tenant))
    del document["tenant_data"]["vehicle"][0]["site"]
    stored = backup_dir / backup.storage_name
    stored.write_bytes(zstandard.ZstdCompressor().compress(json.dumps(document).encode()))
    StoredBackup.objects.filter(pk=backup.pk).update(
        sha256=hashlib.sha256(stored.read_bytes()).hexdigest()
    )
    before = data_of(tenant)
    message, err = refused("backup_restore", "north-pit", str(backup.id), "--yes", returncode=4)
    assert "problem(s)" in message
    assert "vehicle row 1 (serial_number=" in err and "field 'site': required field missing" in err
    assert data_of(tenant) == before


# import_tenant


@pytest.fixture
def backup_file(tenant, tmp_path):
    path = tmp_path / "north-pit.json"
    path.write_bytes(export_bytes(tenant))
    return path


def test_import_with_yes_imports_in_one_pass_and_prints_its_report(tenant, backup_file):
    Site.objects.filter(tenant=tenant).update(name="Changed after the backup")
    rows_before = exported_rows(tenant, include_deleted=True)
    seen = list(AuditLog.objects.values_list("pk", flat=True))
    out, err = run(
        "import_tenant", str(backup_file), "--tenant=north-pit", "--mode=replace", "--yes"
    )
    assert "Preview" not in out
    assert "Imported (replace) of backup of 'north-pit' into 'north-pit':" in out
    assert "Import into 'north-pit' done." in out
    logged = list(AuditLog.objects.exclude(pk__in=seen).values_list("action", flat=True))
    # The undo backup's export, the import: no backup.preview.
    assert sorted(logged) == [
        "backup.export",
        "backup.import",
        "backup.stored.created",
        "backup.stored.finished",
    ]
    assert err == ""  # no progress without a terminal

    undo = StoredBackup.objects.get()
    assert (undo.trigger, undo.status) == ("before_restore", "succeeded")
    assert (
        f"Stored backup {undo.id} of the current data of 'north-pit' ({undo.total_rows:,} rows): "
        f"`manage.py backup_restore north-pit {undo.id} --mode replace` undoes this import."
    ) in out
    assert out.index("Stored backup") < out.index("Imported")
    # What it stored is the data as it was before the import.
    assert undo.total_rows == rows_before


def test_import_with_no_undo_stores_no_backup(tenant, backup_file):
    out, _err = run("import_tenant", str(backup_file), "--tenant=north-pit", "--yes", "--no-undo")
    assert "Imported (merge)" in out and "Stored backup" not in out
    assert not StoredBackup.objects.exists()


def test_import_as_new_tenant_stores_no_undo_backup(tenant, backup_file):
    run("import_tenant", str(backup_file), "--new-tenant=north-pit-copy", "--yes")
    assert Tenant.objects.filter(slug="north-pit-copy").exists()
    assert not StoredBackup.objects.exists()


def test_a_refused_import_deletes_its_undo_backup_again(tenant, other, tmp_path, backup_dir):
    path = tmp_path / "south-pit.json"
    path.write_bytes(export_bytes(other))  # another tenant's backup: refused into this one
    before = snapshot(audit=False)
    message, err = refused(
        "import_tenant", str(path), "--tenant=north-pit", "--mode=replace", "--yes", returncode=5
    )
    assert "south-pit" in message
    assert "of the current data deleted again: the import wrote nothing." in err
    assert snapshot(audit=False) == before
    assert files(backup_dir) == []
    assert actions(tenant, "backup.stored.") == [
        "backup.stored.created",
        "backup.stored.finished",
        "backup.stored.deleted",
    ]


def test_import_shows_progress_on_a_terminal(tenant, backup_file):
    out, err = run(
        "import_tenant", str(backup_file), "--tenant=north-pit", "--yes", stderr=Terminal()
    )
    assert "Import into 'north-pit' done." in out
    assert "rows" in err and "vehicle" in err
    assert "Storing a backup of the current data first (--no-undo skips it)..." in err


def test_import_confirmed_on_a_terminal_previews_then_imports(tenant, backup_file, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    out, _err = run("import_tenant", str(backup_file), "--tenant=north-pit", "--mode=merge")
    assert out.index("Preview (merge)") < out.index("Stored backup") < out.index("Imported")
    assert "note: before the import, a backup of the tenant's current data is stored" in out
    assert actions(tenant, "backup.preview") == ["backup.preview"]
    assert actions(tenant, "backup.import") == ["backup.import"]
    assert StoredBackup.objects.get().trigger == "before_restore"


def test_preview_only_stores_nothing(tenant, backup_file):
    before = snapshot(audit=False)
    out, _err = run("import_tenant", str(backup_file), "--tenant=north-pit", "--preview")
    assert "Preview (merge)" in out and "costs one export (--no-undo skips it)" in out
    assert snapshot(audit=False) == before
