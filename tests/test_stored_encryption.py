"""Stored backups encrypted at rest: with BACKUP_AGE_RECIPIENTS set, the worker encrypts each
stored backup to the deployment's keys (the real `age` command opens it), and restores and
restore drills decrypt it with BACKUP_AGE_IDENTITY_FILE. Backups stored before stay readable; a
worker without the key fails clearly."""

import io
import re
import subprocess

import orjson
import pytest
import zstandard
from django.core.management import call_command
from django.urls import reverse

from backup.checks import age_keys
from backup.format.encryption import AGE_MAGIC
from backup.models import Drill, Restore, StoredBackup, Trigger
from backup.stored import retention
from backup.stored.backups import run_backup
from backup.stored.drills import request_drill
from tenants.models import MeterReading, Tenant

from . import factories as f
from .backup_support import as_plain, export_bytes, parse
from .test_api import client_for, member_of
from .test_encryption import keypair
from .test_stored_service import data_of, make, restore, without_soft_deleted

pytestmark = pytest.mark.django_db
Status = StoredBackup.Status


@pytest.fixture
def deployment_key(settings, tmp_path):
    """The deployment's key pair, set as the stored backups' recipient and the workers'
    identity."""
    identity, public = keypair(tmp_path, "deployment")
    settings.BACKUP_AGE_RECIPIENTS = [public]
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    return identity


def test_a_stored_backup_is_encrypted_to_the_deployment_key(
    tenant, deployment_key, backup_dir, run_jobs
):
    backup = make(tenant, run_jobs)
    assert backup.status == Status.SUCCEEDED, backup.error
    assert backup.storage_name.endswith(".json.zst.age")
    stored = (backup_dir / backup.storage_name).read_bytes()
    assert stored.startswith(AGE_MAGIC)
    opened = subprocess.run(
        ["age", "-d", "-i", str(deployment_key)], input=stored, check=True, capture_output=True
    ).stdout
    document = zstandard.ZstdDecompressor().decompressobj().decompress(opened)
    assert as_plain(parse(document)["tenant_data"]) == parse(export_bytes(tenant))["tenant_data"]


def test_an_encrypted_stored_backup_restores_and_passes_its_drill(tenant, deployment_key, run_jobs):
    without_soft_deleted(tenant)  # a backup without them replaces them away
    backup = make(tenant, run_jobs)
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.PASSED, drill.problems
    before = data_of(tenant)
    job = restore(tenant, backup, run_jobs, "replace")
    assert job.status == Restore.Status.SUCCEEDED, job.error
    assert data_of(tenant) == before
    # The undo backup made before the replace is encrypted too.
    assert job.undo_backup.storage_name.endswith(".age")
    copy = restore(tenant, backup, run_jobs, "new_tenant", slug="copy", undo=False)
    assert copy.status == Restore.Status.SUCCEEDED, copy.error
    assert MeterReading.objects.filter(tenant=Tenant.objects.get(slug="copy")).exists()


def test_backups_stored_before_encryption_was_set_stay_readable(
    tenant, settings, tmp_path, run_jobs
):
    plain = make(tenant, run_jobs)
    assert not plain.storage_name.endswith(".age")
    identity, public = keypair(tmp_path, "later")
    settings.BACKUP_AGE_RECIPIENTS = [public]
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    with run_jobs():
        drill = request_drill(plain)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.PASSED, drill.problems


def test_a_worker_without_the_identity_fails_the_drill_with_why(
    tenant, deployment_key, settings, run_jobs
):
    backup = make(tenant, run_jobs)
    settings.BACKUP_AGE_IDENTITY_FILE = ""
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.FAILED
    assert "BACKUP_AGE_IDENTITY_FILE is not set" in " ".join(drill.problems)


def test_the_wrong_identity_fails_the_drill_with_why(
    tenant, deployment_key, settings, tmp_path, run_jobs
):
    backup = make(tenant, run_jobs)
    other, _public = keypair(tmp_path, "other")
    settings.BACKUP_AGE_IDENTITY_FILE = str(other)
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.FAILED
    assert "encrypted to another key" in " ".join(drill.problems)


def test_a_backup_asked_for_encrypted_fails_without_recipients_and_leaves_no_file(
    tenant, deployment_key, settings, backup_dir, run_jobs
):
    with run_jobs():  # asked for while the key is set: its file is to be encrypted
        backup = StoredBackup.objects.create(
            tenant=tenant,
            trigger=Trigger.COMMAND,
            storage_name=f"{tenant.pk}/x.json.zst.age",
        )
    settings.BACKUP_AGE_RECIPIENTS = []
    run_backup(backup.pk)
    backup.refresh_from_db()
    assert backup.status == Status.FAILED
    assert "no recipient is set now" in backup.error
    assert not any(backup_dir.rglob("*.age"))


def test_the_storage_repair_knows_encrypted_files(tenant, deployment_key, backup_dir, run_jobs):
    kept = make(tenant, run_jobs)
    orphan = make(tenant, run_jobs)
    StoredBackup.objects.filter(pk=orphan.pk).delete()  # a prune cut short: its file remains
    result = retention.repair_storage()
    assert result.files_removed == [orphan.storage_name] and result.rows_failed == []
    assert (backup_dir / kept.storage_name).exists()
    assert not (backup_dir / orphan.storage_name).exists()


def test_the_api_the_page_and_the_list_say_which_backups_are_encrypted(
    tenant, settings, tmp_path, run_jobs, client
):
    plain = make(tenant, run_jobs)
    _identity, public = keypair(tmp_path, "shown")
    settings.BACKUP_AGE_RECIPIENTS = [public]
    sealed = make(tenant, run_jobs)
    owner = member_of(tenant, "owner")
    api = client_for(owner)
    for backup, encrypted in ((plain, False), (sealed, True)):
        response = api.get(
            reverse("backup-api:backup", kwargs={"tenant": tenant.slug, "id": str(backup.id)})
        )
        assert response.status_code == 200, response.content
        assert response.json()["encrypted"] is encrypted
    out = io.StringIO()
    call_command("backup_list", tenant.slug, "--json", stdout=out)
    listed = {row["id"]: row["encrypted"] for row in orjson.loads(out.getvalue())}
    assert listed == {str(plain.id): False, str(sealed.id): True}
    staff = f.UserFactory(is_staff=True)
    f.MembershipFactory(tenant=tenant, user=staff, role="admin")
    client.force_login(staff)
    page = client.get(reverse("admin:backup_tenant", kwargs={"slug": tenant.slug}))
    row = re.search(rf'<tr id="backup-{sealed.id}".*?</tr>', page.content.decode(), re.S)
    other = re.search(rf'<tr id="backup-{plain.id}".*?</tr>', page.content.decode(), re.S)
    assert ">Encrypted<" in row.group(0) and ">Encrypted<" not in other.group(0)


def test_the_age_settings_are_checked_when_the_server_starts(settings, tmp_path):
    identity, public = keypair(tmp_path, "checked")
    settings.BACKUP_AGE_RECIPIENTS = [public]
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    assert age_keys() == []
    settings.BACKUP_AGE_IDENTITY_FILE = ""
    assert [m.id for m in age_keys()] == ["backup.W003"]  # a machine that only makes backups
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    settings.BACKUP_AGE_RECIPIENTS = [public, "age1typo"]
    [error] = age_keys()
    assert error.id == "backup.E001" and "Recipient 2 ('age1typo')" in error.msg
    settings.BACKUP_AGE_RECIPIENTS = []
    settings.BACKUP_AGE_IDENTITY_FILE = str(tmp_path / "missing.txt")
    [error] = age_keys()
    assert error.id == "backup.E002" and "No such file" in error.msg
    not_a_key = tmp_path / "not-a-key.txt"
    not_a_key.write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    settings.BACKUP_AGE_IDENTITY_FILE = str(not_a_key)
    [error] = age_keys()
    assert error.id == "backup.E002" and "NOTAKEY" not in error.msg


def test_a_tenants_own_key_opens_its_stored_backups_and_no_others(
    tenant, other, deployment_key, settings, tmp_path, backup_dir, run_jobs
):
    own, own_public = keypair(tmp_path, "tenant-own")
    settings.BACKUP_AGE_TENANT_RECIPIENTS = {tenant.slug: [own_public]}
    mine, theirs = make(tenant, run_jobs), make(other, run_jobs)

    def opens(identity, backup) -> bool:
        return (
            subprocess.run(
                ["age", "-d", "-i", str(identity), "-o", "/dev/null"],
                input=(backup_dir / backup.storage_name).read_bytes(),
                capture_output=True,
            ).returncode
            == 0
        )

    assert opens(own, mine) and opens(deployment_key, mine)
    assert opens(deployment_key, theirs) and not opens(own, theirs)
    with run_jobs():  # the workers still drill it with the deployment's key
        drill = request_drill(mine)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.PASSED, drill.problems


def test_the_tenants_keys_are_checked_too(settings, tmp_path):
    identity, public = keypair(tmp_path, "deployment-checked")
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    settings.BACKUP_AGE_RECIPIENTS = [public]
    settings.BACKUP_AGE_TENANT_RECIPIENTS = {"north-pit": [public], "south-pit": ["age1typo"]}
    [error] = age_keys()
    assert error.id == "backup.E004" and "['south-pit']" in error.msg
    settings.BACKUP_AGE_TENANT_RECIPIENTS = {"north-pit": "age1..."}
    [error] = age_keys()
    assert error.id == "backup.E004" and "a JSON object of tenant slugs" in error.msg
    settings.BACKUP_AGE_TENANT_RECIPIENTS = {"north-pit": [public]}
    settings.BACKUP_AGE_RECIPIENTS = []
    assert [m.id for m in age_keys()] == ["backup.W005"]
