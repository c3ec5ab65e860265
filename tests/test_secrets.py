"""Secrets that come back (format version 2): an encrypted backup carries the tenant's secrets
(credentials' secrets), so a replace or a new-tenant restore brings them back with no
re-entry; a plain backup keeps only whether each was set, and a plain file that carries
secrets is refused."""

import io
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from backup.errors import InvalidFile
from backup.format.encryption import Decryption, identities_in
from backup.restore import ImportOptions, Mode, import_backup
from tenants.models import AuditLog, IntegrationCredential, Tenant

from .backup_support import SECRET, export_bytes, parse, snapshot
from .test_encryption import keypair

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(tmp_path):
    return keypair(tmp_path)


def encrypted_export(tenant: Tenant, target: Path, public: str) -> Path:
    call_command(
        "export_tenant", tenant.slug, "-o", str(target), "--recipient", public, stdout=io.StringIO()
    )
    return target


def opened(path: Path, identity: Path) -> bytes:
    """The plaintext, by the real `age` command."""
    return subprocess.run(
        ["age", "-d", "-i", str(identity), str(path)], check=True, capture_output=True
    ).stdout


def restore(path: Path, identity: Path, tenant: Tenant | None, mode: Mode, **options) -> None:
    with path.open("rb") as handle:
        import_backup(
            handle,
            tenant=tenant,
            options=ImportOptions(mode=mode, **options),
            decryption=Decryption(identities=identities_in(identity.read_text())),
        )


def without_time(data: bytes) -> bytes:
    return re.sub(rb'"exported_at":"[^"]*"', b'"exported_at":""', data)


def credential(tenant: Tenant) -> IntegrationCredential:
    return IntegrationCredential.objects.get(tenant=tenant)


def test_a_plain_backup_says_only_whether_a_secret_was_set(tenant):
    document = parse(export_bytes(tenant))
    assert document["metadata"]["secrets"] is False
    (row,) = document["tenant_data"]["integration_credential"]
    assert row["has_secret"] is True and "secret" not in row
    assert SECRET.encode() not in export_bytes(tenant)


def test_an_encrypted_backup_carries_the_secrets(tenant, key, tmp_path):
    identity, public = key
    path = encrypted_export(tenant, tmp_path / "backup.json.age", public)
    assert SECRET.encode() not in path.read_bytes()
    document = parse(opened(path, identity))
    assert document["metadata"]["secrets"] is True
    (row,) = document["tenant_data"]["integration_credential"]
    assert row["secret"] == SECRET and "has_secret" not in row
    fields = document["schema"]["tables"]["integration_credential"]["fields"]
    assert fields["secret"] == {"type": "string", "null": False, "secret": True}


def test_a_replace_brings_the_secrets_back(tenant, key, tmp_path):
    identity, public = key
    path = encrypted_export(tenant, tmp_path / "backup.json.age", public)
    IntegrationCredential.objects.filter(tenant=tenant).update(secret="", secret_needs_reentry=True)
    restore(path, identity, tenant, Mode.REPLACE)
    restored = credential(tenant)
    assert (restored.secret, restored.secret_needs_reentry) == (SECRET, False)


def test_a_merge_sets_the_secret_the_backup_holds(tenant, key, tmp_path):
    identity, public = key
    path = encrypted_export(tenant, tmp_path / "backup.json.age", public)
    IntegrationCredential.objects.filter(tenant=tenant).update(secret="changed since")
    restore(path, identity, tenant, Mode.MERGE)
    assert credential(tenant).secret == SECRET


def test_a_new_tenant_gets_the_secrets(tenant, key, tmp_path):
    identity, public = key
    path = encrypted_export(tenant, tmp_path / "backup.json.age", public)
    restore(path, identity, None, Mode.NEW_TENANT, new_tenant_slug="copy", new_tenant_name="Copy")
    copy = credential(Tenant.objects.get(slug="copy"))
    assert (copy.secret, copy.secret_needs_reentry) == (SECRET, False)
    assert credential(tenant).pk != copy.pk


def test_export_replace_export_gives_the_same_tenant_data(tenant, key, tmp_path):
    identity, public = key
    first = encrypted_export(tenant, tmp_path / "first.json.age", public)
    IntegrationCredential.objects.filter(tenant=tenant).update(secret="lost")
    restore(first, identity, tenant, Mode.REPLACE)
    AuditLog.objects.filter(tenant=tenant).delete()  # not exported by default anyway
    second = encrypted_export(tenant, tmp_path / "second.json.age", public)
    assert (
        parse(opened(first, identity))["tenant_data"]
        == parse(opened(second, identity))["tenant_data"]
    )


def test_a_plain_file_that_carries_secrets_is_refused(tenant, key, tmp_path):
    identity, public = key
    path = encrypted_export(tenant, tmp_path / "backup.json.age", public)
    plain = tmp_path / "decrypted.json"
    plain.write_bytes(opened(path, identity))
    before = snapshot(audit=False)  # the refusal itself is audited
    with (
        pytest.raises(InvalidFile, match="carries the tenant's secrets, and it is not encrypted"),
        plain.open("rb") as handle,
    ):
        import_backup(handle, tenant=tenant, options=ImportOptions(mode=Mode.REPLACE))
    assert snapshot(audit=False) == before


def test_metadata_secrets_must_be_true_or_false(tenant, tmp_path):
    document = export_bytes(tenant).replace(b'"secrets":false', b'"secrets":"yes"', 1)
    with pytest.raises(InvalidFile, match=r"metadata\.secrets must be true or false"):
        import_backup(io.BytesIO(document), tenant=tenant, options=ImportOptions(mode=Mode.MERGE))


def test_the_secrets_export_the_same_on_both_paths(tenant, key, tmp_path):
    identity, public = key
    fast = opened(encrypted_export(tenant, tmp_path / "fast.json.age", public), identity)
    AuditLog.objects.filter(action="backup.export").delete()
    with override_settings(BACKUP_FAST_PATHS=False):
        portable = opened(
            encrypted_export(tenant, tmp_path / "portable.json.age", public), identity
        )
    assert without_time(fast) == without_time(portable)
    assert SECRET.encode() in fast
