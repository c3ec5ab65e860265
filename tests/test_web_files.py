"""Backups with files on every entry point: the page and the API download an archive and
import one (preview, then confirm); stored backups keep one (`.zip`), restore it, and their
drill checks its files without writing them; the command refuses a hostile one with its exit
code, leaving the database and the storage as they were."""

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from backup.models import Drill
from backup.stored.drills import request_drill
from tenants.models import Attachment, Tenant

from .test_admin_backup import confirm, login, page
from .test_admin_backup import preview as page_preview
from .test_api import client_for, member_of, url
from .test_api import preview as api_preview
from .test_files import archive_bytes, media, members, rebuilt
from .test_stored_service import make, restore, stored_file

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def lose_files(tenant: Tenant) -> dict[str, bytes]:
    """Delete the tenant's files from storage; returns what they held, by name."""
    lost = {}
    for attachment in Attachment.objects.filter(tenant=tenant):
        lost[attachment.file.name] = attachment.file.open("rb").read()
        attachment.file.close()
        attachment.file.delete(save=False)
    return lost


def files_of(tenant: Tenant) -> dict[str, bytes]:
    held = {}
    for attachment in Attachment.objects.filter(tenant=tenant):
        with attachment.file.open("rb") as handle:
            held[attachment.file.name] = handle.read()
    return held


def test_page_download_with_files_is_an_archive(client: Client, tenant) -> None:
    login(client, tenant)
    response = client.post(page(tenant, "backup_export"), {"include_files": "on"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="north-pit-backup-\d{8}T\d{6}Z\.zip"',
        response["Content-Disposition"],
    )
    held = members(body(response))
    assert {name.removeprefix("files/") for name in list(held)[1:]} == set(files_of(tenant))


def test_page_upload_of_an_archive_restores_the_files(client: Client, tenant) -> None:
    login(client, tenant)
    data = archive_bytes(tenant)
    lost = lose_files(tenant)
    pending_id, shown = page_preview(client, tenant, data, mode="replace")
    assert shown.status_code == 200
    assert "Attachment files: 1 in the archive" in re.sub(r"\s+", " ", shown.content.decode())
    response = confirm(client, tenant, pending_id, "North Pit")
    assert response.status_code in (200, 302), response.content.decode()[:2000]
    assert files_of(tenant) == lost


def test_api_download_and_import_of_an_archive(tenant) -> None:
    api = client_for(member_of(tenant, "owner"))
    response = api.post(url("export"), {"include_files": True}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('.zip"')
    data = body(response)
    lost = lose_files(tenant)
    previewed = api_preview(api, data, mode="replace")
    assert previewed.status_code == 200, previewed.content
    assert previewed.json()["preview"]["files"]["listed"] == 1
    done = api.post(
        url("import"),
        {"upload_id": previewed.json()["upload_id"], "confirmation": "North Pit"},
        format="json",
    )
    assert done.status_code == 200, done.content
    assert done.json()["files"]["restored"] == 1
    assert files_of(tenant) == lost


def test_api_encrypted_archive_download(tenant) -> None:
    api = client_for(member_of(tenant, "owner"))
    response = api.post(
        url("export"),
        {"include_files": True, "encryption": "passphrase", "passphrase": "a long passphrase"},
        format="json",
    )
    assert response["Content-Disposition"].endswith('.zip.age"')
    import pyrage

    data = pyrage.passphrase.decrypt(body(response), "a long passphrase")
    assert set(members(data)) == {"backup.json", *(f"files/{n}" for n in files_of(tenant))}


def test_a_stored_backup_with_files_restores_them(tenant, run_jobs, backup_dir) -> None:
    backup = make(tenant, run_jobs, include_files=True)
    assert backup.status == "succeeded", backup.error
    assert backup.storage_name.endswith(".zip")
    with zipfile.ZipFile(stored_file(backup_dir, backup)) as archive:
        assert len(archive.namelist()) == 2
    lost = lose_files(tenant)
    job = restore(tenant, backup, run_jobs, "replace")
    assert job.status == "succeeded", job.error
    assert job.report["files"]["restored"] == 1
    assert files_of(tenant) == lost


def test_a_drill_checks_the_files_and_writes_none(tenant, run_jobs, settings) -> None:
    backup = make(tenant, run_jobs, include_files=True)
    before = media(Path(settings.MEDIA_ROOT))
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.PASSED, drill.problems
    assert media(Path(settings.MEDIA_ROOT)) == before


def test_a_drill_finds_a_damaged_file(tenant, run_jobs, backup_dir) -> None:
    backup = make(tenant, run_jobs, include_files=True)
    path = stored_file(backup_dir, backup)
    data = path.read_bytes()
    (name,) = files_of(tenant)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            value = source.read(info)
            target.writestr(
                info.filename, value[:-1] + b"!" if info.filename.endswith(name) else value
            )
    path.write_bytes(out.getvalue())
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.FAILED
    assert any("corrupt" in problem for problem in drill.problems), drill.problems


def test_the_command_refuses_a_hostile_archive_with_exit_code_3(tenant, settings, tmp_path):
    path = tmp_path / "evil.zip"
    path.write_bytes(rebuilt(archive_bytes(tenant), extra=[("files/../../x", b"evil")]))
    before = media(Path(settings.MEDIA_ROOT))
    with pytest.raises(CommandError, match="climbs out") as refused:
        call_command("import_tenant", str(path), "--tenant", tenant.slug, "--preview")
    assert refused.value.returncode == 3
    assert media(Path(settings.MEDIA_ROOT)) == before


def test_the_command_names_the_archive_it_wants(tenant, tmp_path):
    with pytest.raises(CommandError, match="add --include-files"):
        call_command("export_tenant", tenant.slug, "-o", str(tmp_path / "x.zip"))
    with pytest.raises(CommandError, match="compresses itself"):
        call_command(
            "export_tenant", tenant.slug, "--include-files", "-o", str(tmp_path / "x.json.gz")
        )
    out = io.StringIO()
    call_command(
        "export_tenant", tenant.slug, "--include-files", "-o", str(tmp_path / "x.zip"), stdout=out
    )
    assert "and 1 files" in out.getvalue()
    assert zipfile.is_zipfile(tmp_path / "x.zip")
