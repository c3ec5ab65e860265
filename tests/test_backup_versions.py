"""Every format version ever released keeps importing: real exports of each version, kept in
`fixtures/backups/v<N>/` (a small tenant, and one with rows in every table, soft-deleted rows and
the audit trail included), imported by today's code through the upgrade chain.

A new format version adds its own folder of exports, made by the release that introduced it; the
files of older versions are never regenerated.
"""

import zipfile
from pathlib import Path

import orjson
import pytest
from django.contrib.auth import get_user_model

from backup.format.encryption import Decryption, identities_in
from backup.registry import registry
from backup.restore import ImportOptions, Mode, import_backup, preview_import
from tenants.models import Attachment, IntegrationCredential, Tenant

from .backup_support import export_bytes, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "backups"
RELEASED = sorted(FIXTURES.glob("v*/*.json"))
# Encrypted exports that carry their tenant's secrets, each beside the key that opens it.
SEALED = sorted(FIXTURES.glob("v*/*.json.age"))
# Fields whose values a restore gives anew: a secret cannot come back from a file (it is flagged
# for re-entry instead), and a new tenant's rows get new ids.
RESTORED_ANEW = {"id", "has_secret", "secret_needs_reentry"}


def test_the_released_versions_are_all_here():
    versions = {path.parent.name for path in RELEASED}
    assert {"v1", "v2"} <= versions
    for version in versions:
        assert {path.name for path in RELEASED if path.parent.name == version} == {
            "small.json",
            "every-table.json",
        }
        every = _document(FIXTURES / version / "every-table.json")["statistics"]
        assert [t.name for t in registry().tenant_tables if not every.get(t.name)] == []
    assert SEALED, "a released version with secrets has its encrypted export"
    assert ARCHIVES, "a released version with files has its archive"


def _document(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


@pytest.fixture
def members(db):
    """The users the files' memberships name (a membership is restored only for a user that
    exists here)."""
    for path in RELEASED:
        for row in _document(path)["tenant_data"].get("membership", []):
            get_user_model().objects.get_or_create(username=row["user"], email=row["user"])


def _restore(path: Path, slug: str):
    with path.open("rb") as handle:
        return import_backup(
            handle,
            options=ImportOptions(
                mode=Mode.NEW_TENANT,
                new_tenant_slug=slug,
                new_tenant_name=f"Restored {slug}",
                create_missing_master_data=True,
            ),
        )


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_released_backup_previews_without_a_problem(path, members):
    with path.open("rb") as handle:
        report = preview_import(
            handle,
            options=ImportOptions(
                mode=Mode.NEW_TENANT, new_tenant_slug="preview", create_missing_master_data=True
            ),
        )
    assert report.problems == []
    statistics = _document(path)["statistics"]
    assert {t: c.in_file for t, c in report.tables.items() if c.in_file} == {
        t: n for t, n in statistics.items() if n
    }
    assert not Tenant.objects.filter(slug="preview").exists()


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_released_backup_restores_every_row_and_value(path, members):
    document = _document(path)
    _restore(path, "restored")
    tenant = Tenant.objects.get(slug="restored")
    for spec in registry().tenant_tables:
        count = spec.model.objects.filter(tenant=tenant)
        if spec.stamp is not None:  # the audit trail also records the import itself
            count = count.exclude(**{spec.stamp.import_id: None})
        assert count.count() == document["statistics"].get(spec.name, 0), spec.name
    # Exported again, the tenant holds the same values, ids and secrets aside.
    again = parse(export_bytes(tenant, include_audit_logs=True, include_deleted=True))
    for table, rows in document["tenant_data"].items():
        if table == "audit_log":
            continue  # the restored tenant's trail also holds the import's own entries
        assert _values(table, again["tenant_data"][table]) == _values(table, rows), table


def _values(table: str, rows: list[dict]) -> list[bytes]:
    """The rows' values but their ids and references (a new tenant's rows get new ids, master
    data made for it too), sorted."""
    spec = registry().table(table)
    compared = [f.name for f in spec.fields if f.kind == "value"]
    return sorted(
        orjson.dumps({k: row[k] for k in compared if k not in RESTORED_ANEW}) for row in rows
    )


@pytest.mark.parametrize("path", SEALED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_released_encrypted_backup_brings_its_secrets_back(path, members):
    identities = identities_in((path.parent / "identity.txt").read_text())
    with path.open("rb") as handle:
        import_backup(
            handle,
            options=ImportOptions(
                mode=Mode.NEW_TENANT,
                new_tenant_slug="sealed",
                new_tenant_name="Restored sealed",
                create_missing_master_data=True,
            ),
            decryption=Decryption(identities=identities),
        )
    restored = IntegrationCredential.objects.get(tenant__slug="sealed")
    assert (restored.secret, restored.secret_needs_reentry) == (
        "fixture-secret-not-a-real-one",
        False,
    )


# Archives with the tenant's files (format version 2 on).
ARCHIVES = sorted(FIXTURES.glob("v*/*.zip"))


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_released_archive_brings_its_files_back(path, members):
    with zipfile.ZipFile(path) as archive:
        document = orjson.loads(archive.read("backup.json"))
        stored = {item["name"]: archive.read(f"files/{item['name']}") for item in document["files"]}
    assert stored, "the archive holds files"
    _restore(path, "with-files")
    restored = Attachment.objects.filter(tenant__slug="with-files")
    assert restored.count() == len(stored)
    for attachment in restored:
        with attachment.file.open("rb") as handle:
            assert handle.read() == stored[attachment.file.name]
