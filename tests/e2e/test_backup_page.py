"""Admin > Backup in a real browser: log in, read the stats, export, import (merge, replace).

Run by `.ci/e2e` (marked `e2e`, so the default test run deselects it). Chromium is Debian's
(`apt-get install chromium`); a screenshot of every step is written to var/e2e-screenshots/.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from backup.statistics import tenant_statistics
from tenants.models import Tenant
from tests import factories as f
from tests.backup_support import parse, populate
from tests.factories.auth import PASSWORD

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "e2e-screenshots"


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


class Steps:
    """Numbered full-page screenshots, one per step."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=SCREENSHOTS / f"{self.count:02d}-{name}.png", full_page=True)


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


def test_export_then_import_merge_and_replace(page: Page, live_server: Any, tmp_path: Path):
    tenant = f.TenantFactory(name="Ridge Quarry", slug="ridge")
    populate(tenant)
    admin = f.UserFactory(username="ridge-admin", is_staff=True)
    f.MembershipFactory(tenant=tenant, user=admin, role="admin")
    before = counts(tenant)
    steps = Steps(page)

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "ridge-admin")
    page.fill("#id_password", PASSWORD)
    steps.shot("login")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#content-main")).to_contain_text("Export and import")
    steps.shot("admin-index")

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

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export JSON").click()
    download = download_info.value
    assert re.fullmatch(r"ridge-backup-\d{8}T\d{6}Z\.json", download.suggested_filename)
    backup = tmp_path / download.suggested_filename
    download.save_as(backup)
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
