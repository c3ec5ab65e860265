"""Admin > Backup in a real browser: log in, read the stats, export, import (merge, replace);
then stored backups with a real worker: create one, wait for it, download it, restore it as a
new tenant; and the schedule of automatic backups, edited in the page.

Run by `.ci/e2e` (marked `e2e`, so the default test run deselects it). Chromium is Debian's
(`apt-get install chromium`); a screenshot of every step is written to var/e2e-screenshots/.
The worker is `manage.py db_worker` in a process of its own, started by the `worker` fixture
against the live server's test database and storage directories.
"""

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import zipfile
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright

from backup.models import Alert, Schedule, StoredBackup, Trigger
from backup.statistics import tenant_statistics
from backup.stored import backups
from backup.stored.alerts import raise_alert
from backup.stored.drills import request_drill
from tenants.models import Attachment, Tenant
from tests import factories as f
from tests.backup_support import parse, populate
from tests.factories.auth import PASSWORD

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "e2e-screenshots"
WORKER_LOG = Path(django_settings.BASE_DIR) / "var" / "e2e-worker.log"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture(autouse=True)
def _upload_storage(settings: Any, tmp_path: Path) -> None:
    uploads = {**settings.STORAGES["backup_uploads"]}
    uploads["OPTIONS"] = {**uploads["OPTIONS"], "location": str(tmp_path / "uploads")}
    settings.STORAGES = {**settings.STORAGES, "backup_uploads": uploads}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()


class Steps:
    """Numbered full-page screenshots, one per step; `prefix` keeps each test's apart."""

    def __init__(self, page: Page, prefix: str = "") -> None:
        self.page = page
        self.prefix = prefix
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}{self.count:02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)


def worker_database_url() -> str:
    """DATABASE_URL of the test database the live server uses (for the worker process)."""
    database = connection.settings_dict
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{database['NAME']}"
    user = quote(database["USER"] or "", safe="")
    password = quote(database["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = database["HOST"] or "localhost"
    port = f":{database['PORT']}" if database["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{database['NAME']}"


class Worker:
    """`manage.py db_worker` in its own process, sharing the live server's database, storage
    and spool directories; started when the test says so."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"]
        with WORKER_LOG.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--interval", "0.2"],
                cwd=django_settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)  # db_worker finishes its task, then exits
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def worker(transactional_db: None, live_server: Any, settings: Any) -> Iterator[Worker]:
    """Jobs go to the database queue (not the tests' immediate backend), where the worker takes
    them. Stopped before the test's database is flushed (it asks for `transactional_db`)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "BACKUP_TASK_BACKEND": "db",
        "BACKUP_STORAGE_DIR": str(settings.STORAGES["backups"]["OPTIONS"]["location"]),
        "BACKUP_UPLOAD_DIR": str(settings.STORAGES["backup_uploads"]["OPTIONS"]["location"]),
        "BACKUP_SPOOL_DIR": str(settings.BACKUP_SPOOL_DIR),
        "BACKUP_JOB_HEARTBEAT_SECONDS": "0.5",
        "BACKUP_SITE_URL": live_server.url,
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "DEBUG": "true",
    }
    running = Worker(env)
    yield running
    crashed = running.process is not None and not running.alive()
    running.stop()
    assert not crashed, f"the worker stopped by itself: see {WORKER_LOG}"


def counts(tenant: Tenant) -> dict[str, int]:
    return {k: v for k, v in tenant_statistics(tenant).items() if k != "audit_log"}


def totals_row(page: Page, table: str) -> list[int]:
    cells = page.locator(f"#{table} tr.total td").all_inner_texts()
    return [int(cell) for cell in cells]


def upload(page: Page, path: Path, mode: str) -> None:
    page.set_input_files("#id_file", path)
    page.check(f"input[name=mode][value={mode}]")
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.locator("h1")).to_contain_text("preview")


def export_json(page: Page, folder: Path, name: str) -> Path:
    """Export JSON from the page: the download, saved in `folder`, its name matching `name`."""
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export JSON").click()
    download = download_info.value
    assert re.fullmatch(name, download.suggested_filename)
    saved = folder / download.suggested_filename
    download.save_as(saved)
    return saved


def log_in(page: Page, live_server: Any, steps: Steps, username: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    steps.shot("login")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#content-main")).to_contain_text("Export and import")
    steps.shot("admin-index")


def test_encrypted_download_then_upload_with_its_passphrase(
    page: Page, live_server: Any, tmp_path: Path
):
    """A download encrypted with a passphrase typed on the page, then uploaded with it: the
    preview asks for it again to import (it is kept nowhere)."""
    tenant = f.TenantFactory(name="Scar Quarry", slug="scar")
    populate(tenant)
    admin = f.UserFactory(username="scar-admin", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=admin, role="admin")
    before = counts(tenant)
    steps = Steps(page, "encrypted-")
    log_in(page, live_server, steps, "scar-admin")
    page.get_by_role("link", name="Export and import").click()
    page.check("input[name=encryption][value=passphrase]")
    page.fill("#id_export_passphrase", "sheep in the fog")
    page.fill("#id_export_passphrase_again", "sheep in the fog")
    steps.shot("encrypt-with-passphrase")
    backup = export_json(page, tmp_path, r"scar-backup-\d{8}T\d{6}Z\.json\.gz\.age")
    assert backup.read_bytes().startswith(b"age-encryption.org/v1\n")

    page.fill("#id_passphrase", "sheep in the fog")
    upload(page, backup, "merge")
    in_file, create, update, unchanged, delete = totals_row(page, "backup-preview-table")
    assert in_file == unchanged and (create, update, delete) == (0, 0, 0)
    steps.shot("encrypted-preview")
    page.get_by_role("button", name="Confirm import").click()
    expect(page.locator(".field-passphrase .errorlist")).to_contain_text("type the passphrase")
    page.fill("#id_passphrase", "sheep in the fog")
    steps.shot("passphrase-again")
    page.get_by_role("button", name="Confirm import").click()
    expect(page.locator("#backup-result")).to_contain_text("Import done (merge)")
    steps.shot("encrypted-imported")
    assert counts(tenant) == before


def test_download_with_files_brings_lost_files_back(page: Page, live_server: Any, tmp_path: Path):
    """Export with the attachment files ticked gives a ZIP; after the files are lost, a replace
    from it puts them back, byte for byte."""
    tenant = f.TenantFactory(name="Tor Works", slug="tor")
    populate(tenant)
    admin = f.UserFactory(username="tor-admin", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=admin, role="admin")
    (attachment,) = Attachment.objects.filter(tenant=tenant)
    name = attachment.file.name
    with attachment.file.open("rb") as handle:
        original = handle.read()
    steps = Steps(page, "files-")
    log_in(page, live_server, steps, "tor-admin")
    page.get_by_role("link", name="Export and import").click()
    page.check("#id_export_include_files")
    steps.shot("include-files")
    backup = export_json(page, tmp_path, r"tor-backup-\d{8}T\d{6}Z\.zip")
    with zipfile.ZipFile(backup) as archive:
        assert archive.namelist() == ["backup.json", f"files/{name}"]
    attachment.file.delete(save=False)

    upload(page, backup, "replace")
    expect(page.locator("#backup-files")).to_contain_text("1 in the archive")
    steps.shot("files-preview")
    page.fill("#id_confirmation", "Tor Works")
    page.get_by_role("button", name="Replace the data of Tor Works").click()
    expect(page.locator("#backup-result")).to_contain_text("Import done (replace)")
    expect(page.locator("#backup-files")).to_contain_text("1 written to storage")
    steps.shot("files-restored")
    restored = Attachment.objects.get(tenant=tenant)
    assert restored.file.name == name
    with restored.file.open("rb") as handle:
        assert handle.read() == original


def test_export_then_import_merge_and_replace(page: Page, live_server: Any, tmp_path: Path):
    tenant = f.TenantFactory(name="Ridge Quarry", slug="ridge")
    populate(tenant)
    admin = f.UserFactory(username="ridge-admin", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=admin, role="admin")
    before = counts(tenant)
    steps = Steps(page)

    log_in(page, live_server, steps, "ridge-admin")

    page.get_by_role("link", name="Export and import").click()
    expect(page.locator("h1")).to_have_text("Backup of Ridge Quarry")
    stats = dict(
        zip(
            page.locator("#backup-stats tbody th").all_inner_texts(),
            [int(n) for n in page.locator("#backup-stats tbody td").all_inner_texts()],
            strict=True,
        )
    )
    assert stats["Vehicles"] == tenant_statistics(tenant)["vehicle"]
    assert stats["Total"] == sum(tenant_statistics(tenant).values())
    steps.shot("backup-page")

    backup = export_json(page, tmp_path, r"ridge-backup-\d{8}T\d{6}Z\.json")
    document = parse(backup.read_bytes())
    assert document["metadata"]["tenant"]["slug"] == "ridge"
    steps.shot("exported")

    upload(page, backup, "merge")
    in_file, create, update, unchanged, delete = totals_row(page, "backup-preview-table")
    assert in_file == unchanged == sum(document["statistics"].values())
    assert (create, update, delete) == (0, 0, 0)
    expect(page.locator("#backup-nothing-to-do")).to_be_visible()
    steps.shot("merge-preview")
    page.get_by_role("button", name="Confirm import").click()
    expect(page.locator(".messagelist")).to_contain_text("0 created, 0 updated")
    expect(page.locator("#backup-result")).to_contain_text("Import done (merge)")
    steps.shot("merge-result")
    assert counts(tenant) == before

    upload(page, backup, "replace")
    expect(page.locator("#backup-replace-warning")).to_contain_text(
        "Replace deletes the current data of Ridge Quarry"
    )
    steps.shot("replace-preview")
    page.fill("#id_confirmation", "ridge")
    page.get_by_role("button", name="Replace the data of Ridge Quarry").click()
    expect(page.locator(".errorlist")).to_contain_text("type the tenant's name exactly")
    steps.shot("replace-wrong-name")
    assert counts(tenant) == before

    page.fill("#id_confirmation", "Ridge Quarry")
    page.get_by_role("button", name="Replace the data of Ridge Quarry").click()
    expect(page.locator("#backup-result")).to_contain_text("Import done (replace)")
    in_file, create, _update, _unchanged, delete = totals_row(page, "backup-result-table")
    assert create == in_file and delete > 0
    steps.shot("replace-result")
    assert counts(tenant) == {table: document["statistics"].get(table, 0) for table in before}


def test_stored_backup_create_download_restore_as_new_tenant(
    page: Page, live_server: Any, worker: Worker, tmp_path: Path
) -> None:
    tenant = f.TenantFactory(name="Fell Works", slug="fell")
    populate(tenant)
    admin = f.UserFactory(username="fell-admin", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=admin, role="admin")
    steps = Steps(page, "stored-")
    stored = page.locator("#backup-stored-table")

    log_in(page, live_server, steps, "fell-admin")
    page.get_by_role("link", name="Export and import").click()
    expect(page.locator("#backup-stored-empty")).to_have_text(
        "No stored backups yet: Create backup makes one in the background."
    )
    steps.shot("empty")

    # No worker runs yet: the backup waits in the queue, and the page says so and reloads.
    page.get_by_role("button", name="Create backup").click()
    expect(page.locator(".messagelist")).to_contain_text("Backup queued")
    expect(stored.locator("tbody tr.backup-queued")).to_contain_text("waiting for a worker")
    expect(stored.locator("tbody tr.backup-queued progress")).to_have_count(1)
    refresh = page.locator('meta[http-equiv="refresh"]')
    expect(refresh).to_have_attribute("content", re.compile(r"^2; url=/admin/backup/fell/$"))
    steps.shot("queued")

    worker.start()  # the page reloads itself until the backup has been made
    done = stored.locator("tbody tr.backup-succeeded")
    expect(done).to_have_count(1, timeout=60_000)
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    backup = StoredBackup.objects.get(tenant=tenant)
    assert backup.status == StoredBackup.Status.SUCCEEDED
    cells = done.locator("td").all_inner_texts()
    assert cells[2] == str(backup.total_rows) and cells[3] == "Admin page"
    assert cells[4] == admin.email
    steps.shot("succeeded")

    done.get_by_role("link", name="Download").click()
    expect(page.locator("h1")).to_have_text("Download: backup of Fell Works")
    page.fill("#id_password", "not my password")
    page.get_by_role("button", name="Download").click()
    expect(page.locator(".errorlist")).to_contain_text("The password is wrong.")
    steps.shot("download-wrong-password")
    page.fill("#id_password", PASSWORD)
    steps.shot("download-password")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    download = download_info.value
    assert re.fullmatch(r"fell-\d{8}-\d{6}\.json\.zst", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert len(data) == backup.size > 0 and data.startswith(ZSTD_MAGIC)
    steps.shot("downloaded")

    page.get_by_role("link", name="Back to the backups").click()
    stored.locator("tbody tr.backup-succeeded").get_by_role("link", name="Restore").click()
    expect(page.locator("#id_undo")).to_be_checked()
    page.check("input[name=mode][value=new_tenant]")
    page.fill("#id_new_tenant_slug", "fell-copy")
    page.fill("#id_new_tenant_name", "Fell Works Copy")
    steps.shot("restore-form")
    page.get_by_role("button", name="Preview the restore").click()

    # The worker previews: the page reloads itself until the preview is there.
    expect(page.locator("#backup-preview-table")).to_be_visible(timeout=60_000)
    in_file, create, update, unchanged, delete = totals_row(page, "backup-preview-table")
    assert in_file == create == backup.total_rows and (update, unchanged, delete) == (0, 0, 0)
    assert not Tenant.objects.filter(slug="fell-copy").exists()
    steps.shot("restore-preview")

    page.get_by_role("button", name="Create fell-copy").click()
    expect(page.locator("#backup-result")).to_contain_text(
        "Restored as new tenant Fell Works Copy (fell-copy)", timeout=60_000
    )
    in_file, create, _update, _unchanged, _delete = totals_row(page, "backup-result-table")
    assert in_file == create == backup.total_rows
    steps.shot("restore-result")
    copy = Tenant.objects.get(slug="fell-copy")
    restored = {table: rows for table, rows in counts(copy).items() if rows}
    assert restored == {t: rows for t, rows in backup.rows.items() if rows and t != "audit_log"}

    page.get_by_role("link", name="Open the backup page of Fell Works Copy").click()
    expect(page.locator("h1")).to_have_text("Backup of Fell Works Copy")
    steps.shot("new-tenant-page")
    assert worker.alive()


def test_schedule_edited_in_the_browser(page: Page, live_server: Any) -> None:
    tenant = f.TenantFactory(name="Crag Pit", slug="crag")
    populate(tenant)
    owner = f.UserFactory(username="crag-owner", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=owner, role="owner")
    raise_alert(
        tenant, Alert.Kind.MISSED, "slot", "The backup slot of 2026-12-08 02:00 UTC passed."
    )
    steps = Steps(page, "schedule-")
    schedule = page.locator("#backup-schedule")

    log_in(page, live_server, steps, "crag-owner")
    page.get_by_role("link", name="Export and import").click()
    expect(page.locator("#backup-alerts")).to_contain_text("2026-12-08 02:00 UTC passed")
    expect(page.locator("#schedule-when")).to_contain_text("Daily at 02:00")
    steps.shot("page")

    page.get_by_text("Change the schedule").click()
    page.select_option("#id_schedule_frequency", "weekly")
    page.fill("#id_schedule_time", "25:00")
    page.get_by_role("button", name="Save schedule").click()
    # Both mistakes beside their fields; the form stays open with what was typed.
    expect(schedule.locator(".field-weekday .errorlist")).to_contain_text("needs the day of the")
    expect(schedule.locator(".field-time .errorlist")).to_contain_text("'25:00' is not a time")
    expect(page.locator("#id_schedule_time")).to_have_value("25:00")
    steps.shot("errors")
    assert not Schedule.objects.filter(tenant=tenant).exists()  # the defaults, not saved

    page.select_option("#id_schedule_weekday", "thursday")
    page.fill("#id_schedule_time", "04:30")
    page.fill("#id_schedule_timezone", "America/New_York")
    page.uncheck("#id_schedule_drill")
    page.check("#id_schedule_include_deleted")
    page.fill("#id_schedule_keep_last", "10")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.locator(".messagelist")).to_contain_text("Schedule saved.")
    expect(page.locator("#schedule-when")).to_have_text(
        "Weekly on Thursday at 04:30, America/New_York time"
    )
    expect(page.locator("#schedule-drill")).to_have_text("Off")
    page.screenshot(path=SCREENSHOTS / "schedule.png", full_page=True)

    saved = Schedule.objects.get(tenant=tenant)
    assert (saved.frequency, saved.weekday, saved.time) == ("weekly", 3, dt.time(4, 30))
    assert (saved.timezone, saved.drill, saved.keep_last) == ("America/New_York", False, 10)
    assert saved.options == {
        "include_audit_logs": False,
        "include_deleted": True,
        "include_files": False,
    }
    assert saved.updated_by == owner
    local = saved.next_slot_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert (local.weekday(), local.strftime("%H:%M")) == (3, "04:30")
    expect(page.locator("#schedule-next")).to_contain_text(
        f"{local:%a %Y-%m-%d} 04:30 America/New_York"
    )


def test_stored_backups_verified_kept_and_alerts_on_the_index(page: Page, live_server: Any) -> None:
    tenant = f.TenantFactory(name="Scar Quarry", slug="scar")
    populate(tenant)
    owner = f.UserFactory(username="scar-owner", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=owner, role="owner")
    f.UserFactory(username="root", is_staff=True, is_superuser=True)
    # Jobs run in this process as they are asked for (the tests' immediate task backend).
    made = [backups.request_backup(tenant, user=owner, trigger=Trigger.PAGE) for _ in range(2)]
    request_drill(made[0])
    raise_alert(tenant, Alert.Kind.DRILL_FAILED, "b", "The restore drill of a backup failed.")
    steps = Steps(page, "retention-")
    stored = page.locator("#backup-stored-table")

    log_in(page, live_server, steps, "scar-owner")
    page.get_by_role("link", name="Export and import").click()
    verified = stored.locator(f"#backup-{made[0].id}-more")  # the backup's second line
    expect(verified.locator("td.verification")).to_have_text(re.compile(r"Verified in \d+\.\d s"))
    expect(stored.locator(f"#backup-{made[1].id}-more td.verification")).to_have_text(
        "Not verified"
    )
    expect(verified.locator("td.retention")).to_contain_text("Expires")
    verified.get_by_role("button", name="Keep").click()
    expect(page.locator(".messagelist")).to_contain_text("is kept until you release it")
    expect(verified.locator("td.retention")).to_contain_text("Kept")
    expect(verified.get_by_role("button", name="Release")).to_be_visible()
    steps.shot("kept")
    made[0].refresh_from_db()
    assert made[0].keep and made[0].expires_at is None

    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server, steps, "root")
    alerts = page.locator("#backup-alerts")
    expect(alerts).to_contain_text("Restore drill failed")
    expect(alerts).to_contain_text("The restore drill of a backup failed.")
    alerts.get_by_role("link", name="Scar Quarry").click()
    expect(page.locator("h1")).to_have_text("Backup of Scar Quarry")
    expect(page.locator("#backup-alerts")).to_contain_text("The restore drill of a backup failed.")
    steps.shot("superuser-tenant-page")
