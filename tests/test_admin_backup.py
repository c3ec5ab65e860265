"""Admin > Backup: who may use it, the stats, export, and import through preview and confirm."""

import gzip
import re
import uuid
from typing import Any

import pytest
import zstandard
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from backup.statistics import tenant_statistics
from backup.uploads import upload_storage
from tenants.models import AuditLog, TCOScenario, Tenant, Vehicle
from tests import factories as f
from tests.backup_support import dump, export_bytes, parse, populate, snapshot
from tests.broken_backups import CASES, CORPUS, TENANT

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant() -> Tenant:
    tenant = f.TenantFactory(name="North Quarry", slug="north")
    populate(tenant)
    return tenant


def login(client: Client, tenant: Tenant | None = None, role: str = "admin", **user: Any) -> Any:
    person = f.UserFactory(is_staff=True, **user)
    if tenant is not None:
        f.MembershipFactory(tenant=tenant, user=person, role=role)
    client.force_login(person)
    return person


def page(tenant: Tenant, name: str = "backup_tenant", **kwargs: str) -> str:
    return reverse(f"admin:{name}", kwargs={"slug": tenant.slug, **kwargs})


def upload(client: Client, tenant: Tenant, data: bytes, mode: str = "merge", **fields: str) -> Any:
    file = SimpleUploadedFile("backup.json", data, content_type="application/json")
    return client.post(page(tenant, "backup_import"), {"file": file, "mode": mode, **fields})


def preview(client: Client, tenant: Tenant, data: bytes, mode: str = "merge", **fields: str):
    """Upload and follow the redirect to the preview; returns (pending id, preview response)."""
    response = upload(client, tenant, data, mode, **fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    pending_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    return pending_id, client.get(response["Location"])


def confirm(client: Client, tenant: Tenant, pending_id: str, confirmation: str = "") -> Any:
    return client.post(
        page(tenant, "backup_import_confirm"),
        {"pending_id": pending_id, "confirmation": confirmation},
    )


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def database() -> dict[str, list[dict[str, Any]]]:
    """`snapshot()` of everything but the audit log (previews are audited) and the sessions
    (which carry the preview between the upload and the confirmation)."""
    rows = snapshot(audit=False)
    del rows["sessions.Session"]
    return rows


def counts(tenant: Tenant) -> dict[str, int]:
    return {k: v for k, v in tenant_statistics(tenant).items() if k != "audit_log" and v}


def stored_uploads() -> list[str]:
    try:
        return upload_storage().listdir("")[1]
    except FileNotFoundError:
        return []


# -- access ------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_admin_login(client: Client, tenant: Tenant) -> None:
    for url in (reverse("admin:backup"), page(tenant), page(tenant, "backup_export")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login") + "?next=")


def test_non_staff_owner_is_sent_to_the_admin_login(client: Client, tenant: Tenant) -> None:
    owner = f.UserFactory(is_staff=False)
    f.MembershipFactory(tenant=tenant, user=owner, role="owner")
    client.force_login(owner)
    response = client.get(page(tenant))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_superuser_picks_any_tenant(client: Client, tenant: Tenant) -> None:
    other = f.TenantFactory(name="South Mine", slug="south")
    login(client, is_superuser=True)
    response = client.get(reverse("admin:backup"))
    assert response.status_code == 200
    assert page(tenant) in text(response) and page(other) in text(response)
    assert client.get(reverse("admin:backup"), {"q": "south"}).context["total"] == 1
    assert client.get(page(other)).status_code == 200


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_tenant_admin_gets_its_own_tenant_only(client: Client, tenant: Tenant, role: str) -> None:
    other = f.TenantFactory()
    login(client, tenant, role)
    response = client.get(reverse("admin:backup"))
    assert response.status_code == 302 and response["Location"] == page(tenant)
    assert client.get(page(tenant)).status_code == 200
    assert client.get(page(other)).status_code == 404
    assert client.post(page(other, "backup_export")).status_code == 404


def test_tenant_admin_of_two_tenants_chooses_between_them(client: Client, tenant: Tenant) -> None:
    second = f.TenantFactory()
    third = f.TenantFactory()
    person = login(client, tenant)
    f.MembershipFactory(tenant=second, user=person, role="owner")
    response = client.get(reverse("admin:backup"))
    assert response.status_code == 200
    assert [t.slug for t in response.context["tenants"]] == sorted(
        [tenant.slug, second.slug], key=lambda slug: Tenant.objects.get(slug=slug).name
    )
    assert page(third) not in text(response)


def test_member_is_refused(client: Client, tenant: Tenant) -> None:
    login(client, tenant, "member")
    assert client.get(reverse("admin:backup")).status_code == 403
    assert client.get(page(tenant)).status_code == 403
    assert client.post(page(tenant, "backup_export")).status_code == 403
    data = export_bytes(tenant)
    before = snapshot()
    assert upload(client, tenant, data).status_code == 403
    assert snapshot() == before


def test_staff_of_another_tenant_learns_nothing(client: Client, tenant: Tenant) -> None:
    login(client, f.TenantFactory())
    assert client.get(page(tenant)).status_code == 404
    assert client.get(page(tenant, "backup_import_preview", pending_id="x" * 32)).status_code == 404
    login(client)  # staff, no membership anywhere
    assert client.get(reverse("admin:backup")).status_code == 403
    assert client.get(page(tenant)).status_code == 404


def test_admin_index_shows_backup_to_those_who_may_use_it(client: Client, tenant: Tenant) -> None:
    login(client, tenant, "owner")
    assert reverse("admin:backup") in text(client.get(reverse("admin:index")))
    login(client, tenant, "member")
    assert reverse("admin:backup") not in text(client.get(reverse("admin:index")))


# -- stats and export --------------------------------------------------------------------------


def test_stats_panel_counts_every_tenant_table(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    response = client.get(page(tenant))
    stats = tenant_statistics(tenant)
    assert [count for _label, count in response.context["statistics"]] == list(stats.values())
    assert response.context["total_rows"] == sum(stats.values())
    vehicles = Vehicle.objects.filter(tenant=tenant).count()
    assert f'Vehicles</th><td class="count">{vehicles}</td>' in text(response)


def test_page_says_what_an_export_includes(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    body = text(client.get(page(tenant)))
    for phrase in (
        "every tenant table",
        "Meter readings",
        "only the entries this tenant's records reference",
        "only with “Include audit logs”",
        "only with “Include deleted records”",
        "password hashes",
        "referred to by email",
    ):
        assert phrase in body.replace("&#x27;", "'"), phrase


def test_export_downloads_a_backup_of_the_tenant(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    response = client.post(page(tenant, "backup_export"))
    assert response.status_code == 200 and response.streaming
    disposition = response["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="north-backup-\d{8}T\d{6}Z\.json"', disposition)
    document = parse(b"".join(response.streaming_content))
    assert document["metadata"]["tenant"]["id"] == str(tenant.pk)
    assert "audit_log" not in document["tenant_data"]
    assert document["metadata"]["options"] == {
        "include_audit_logs": False,
        "include_deleted": False,
        "include_files": False,
    }
    assert AuditLog.objects.filter(tenant=tenant, action="backup.export").count() == 1


def test_export_options_are_passed_on(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    response = client.post(
        page(tenant, "backup_export"), {"include_audit_logs": "on", "include_deleted": "on"}
    )
    document = parse(b"".join(response.streaming_content))
    assert document["metadata"]["options"] == {
        "include_audit_logs": True,
        "include_deleted": True,
        "include_files": False,
    }
    assert document["tenant_data"]["audit_log"]
    assert any(row["deleted_at"] for row in document["tenant_data"]["vehicle"])


def test_export_is_post_only(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    assert client.get(page(tenant, "backup_export")).status_code == 405


# -- import --------------------------------------------------------------------------------------


def test_merge_preview_of_an_unchanged_export_writes_nothing(
    client: Client, tenant: Tenant
) -> None:
    login(client, tenant)
    data = export_bytes(tenant)
    before = database()
    pending_id, response = preview(client, tenant, data)
    assert response.status_code == 200
    report = response.context["report"]
    assert report["totals"]["unchanged"] == report["totals"]["in_file"] > 0
    assert report["totals"]["create"] == report["totals"]["update"] == 0
    assert report["totals"]["delete"] == 0
    assert all(c["unchanged"] == c["in_file"] for _label, c in report["rows"])
    assert "importing it changes nothing" in text(response)
    assert database() == before
    assert len(stored_uploads()) == 2  # the file and its record, waiting for the confirmation

    response = confirm(client, tenant, pending_id)
    assert response.status_code == 302 and response["Location"] == page(tenant)
    assert database() == before
    assert stored_uploads() == []
    shown = client.get(page(tenant))
    assert shown.context["result"]["applied"] is True
    assert "Import done (merge)" in text(shown)
    assert "0 created, 0 updated" in text(shown)
    # The result is shown once, not on every later visit.
    assert client.get(page(tenant)).context["result"] is None


def test_merge_adds_back_rows_missing_here(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    backup = export_bytes(tenant)
    before = counts(tenant)
    TCOScenario.objects.filter(tenant=tenant).delete()
    pending_id, response = preview(client, tenant, backup)
    rows = dict(response.context["report"]["rows"])
    assert rows["TCO scenarios"]["create"] == before["tco_scenario"] == 1
    assert response.context["report"]["totals"]["create"] == 1
    confirm(client, tenant, pending_id)
    assert counts(tenant) == before


def test_replace_needs_the_tenant_name_typed(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    data = export_bytes(tenant)
    added = f.SiteFactory(tenant=tenant)  # not in the backup: replace removes it
    pending_id, response = preview(client, tenant, data, "replace")
    assert "Replace deletes the current data of North Quarry" in text(response)
    assert response.context["report"]["totals"]["delete"] > 0
    before = snapshot()

    response = confirm(client, tenant, pending_id, "north")
    assert response.status_code == 400
    assert "type the tenant&#x27;s name exactly" in text(response)
    assert snapshot() == before
    assert len(stored_uploads()) == 2  # can be confirmed again

    response = confirm(client, tenant, pending_id, " North Quarry ")
    assert response.status_code == 302
    assert not type(added).objects.filter(pk=added.pk).exists()
    assert stored_uploads() == []
    assert "deleted" in text(client.get(page(tenant)))


def test_file_that_fails_validation_shows_its_problems(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    document = parse(export_bytes(tenant))
    document["tenant_data"]["vehicle"][0]["status"] = "flying"
    before = database()
    response = upload(client, tenant, dump(document))
    assert response.status_code == 400
    problems = response.context["failure"].problems
    assert [(p.table, p.field) for p in problems] == [("vehicle", "status")]
    body = text(response)
    assert "Nothing was imported" in body and "flying" in body
    assert database() == before
    assert stored_uploads() == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not json", "not valid JSON"),
        (b'{"metadata": {"format": "tenant-backup"', "ends too early"),
        (b"\x1f\x8b\x08\x00broken gzip", "could not be decompressed"),
        (b"\x28\xb5\x2f\xfdbroken zstd", "corrupt or truncated zstd data"),
        (b"[1, 2, 3]", ""),
    ],
    ids=["text", "truncated", "bad-gzip", "bad-zstd", "array"],
)
def test_unreadable_file_gets_a_clear_error(
    client: Client, tenant: Tenant, data: bytes, message: str
) -> None:
    login(client, tenant)
    before = database()
    response = upload(client, tenant, data)
    assert response.status_code == 400
    assert "Nothing was imported" in text(response)
    assert message in response.context["failure"].message
    assert database() == before
    assert stored_uploads() == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_broken_backup_of_the_corpus_gets_its_message(client: Client, case: Any) -> None:
    call_command("loaddata", "fixtures/masterdata.json", verbosity=0)
    corpus = Tenant.objects.create(id=uuid.UUID(TENANT["id"]), name=TENANT["name"], slug="corpus")
    f.SiteFactory(tenant=corpus, name="Old Pit")
    login(client, corpus)
    before = database()
    data = (CORPUS / case.name).read_bytes()
    response = upload(client, corpus, data)
    assert response.status_code == 400
    if not data:  # the form already refuses it, before the engine sees it
        assert response.context["import_form"].errors == {"file": ["The submitted file is empty."]}
    else:
        failure = response.context["failure"]
        problems = map(str, getattr(failure, "problems", []))
        assert case.message in " ".join([failure.message, *problems])
        assert "Nothing was imported" in text(response)
    assert database() == before
    assert stored_uploads() == []


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lambda data: zstandard.ZstdCompressor().compress(data)],
    ids=["gzip", "zstd"],
)
def test_compressed_backup_is_accepted(client: Client, tenant: Tenant, compress: Any) -> None:
    login(client, tenant)
    # Named .json whatever it holds: the content says how it is compressed.
    _pending_id, response = preview(client, tenant, compress(export_bytes(tenant)))
    assert response.status_code == 200
    assert response.context["report"]["totals"]["update"] == 0


def test_backup_of_another_tenant_is_refused(client: Client, tenant: Tenant) -> None:
    other = f.TenantFactory(name="South Mine")
    populate(other)
    login(client, tenant)
    before = database()
    response = upload(client, tenant, export_bytes(other))
    assert response.status_code == 400
    assert "belongs to tenant &#x27;South Mine&#x27;" in text(response)
    assert database() == before


def test_too_large_file_is_refused_before_reading_it(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    settings.BACKUP_UPLOAD_MAX_BYTES = 1000
    login(client, tenant)
    response = upload(client, tenant, export_bytes(tenant))
    assert response.status_code == 413
    assert "backups of at most 1,000 bytes are accepted here" in text(response)
    assert stored_uploads() == []


def test_form_errors_name_the_field(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    response = client.post(page(tenant, "backup_import"), {"mode": "merge"})
    assert response.status_code == 400
    assert response.context["import_form"].errors == {"file": ["This field is required."]}
    response = upload(client, tenant, export_bytes(tenant), "new_tenant")
    assert response.context["import_form"].errors == {
        "new_tenant_slug": ["A restore as new tenant needs a slug."]
    }
    response = upload(client, tenant, export_bytes(tenant), "new_tenant", new_tenant_slug="north")
    assert "already exists" in response.context["import_form"].errors["new_tenant_slug"][0]
    response = upload(client, tenant, export_bytes(tenant), "sideways")
    assert "mode" in response.context["import_form"].errors


def test_only_superusers_may_create_master_data(client: Client, tenant: Tenant) -> None:
    def offered() -> bool:
        return (
            "create_missing_master_data" in client.get(page(tenant)).context["import_form"].fields
        )

    login(client, tenant)
    assert not offered()
    login(client, is_superuser=True)
    assert offered()


def test_restore_as_new_tenant(client: Client, tenant: Tenant) -> None:
    login(client, is_superuser=True)
    data = export_bytes(tenant)
    pending_id, response = preview(
        client, tenant, data, "new_tenant", new_tenant_slug="north-copy", new_tenant_name="Copy"
    )
    assert response.context["report"]["totals"]["create"] > 0
    assert not Tenant.objects.filter(slug="north-copy").exists()  # a preview writes nothing

    response = confirm(client, tenant, pending_id)
    assert response.status_code == 302
    restored = Tenant.objects.get(slug="north-copy")
    assert restored.name == "Copy"
    assert counts(restored) == {k: v for k, v in parse(data)["statistics"].items() if v}
    shown = text(client.get(page(tenant)))
    assert "Restored as new tenant Copy (north-copy)" in shown
    assert page(restored) in shown


def test_cancel_discards_the_upload(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    pending_id, _response = preview(client, tenant, export_bytes(tenant))
    response = client.post(page(tenant, "backup_import_cancel"), {"pending_id": pending_id})
    assert response.status_code == 302
    assert stored_uploads() == []
    response = confirm(client, tenant, pending_id)
    assert response.status_code == 302
    messages = [str(m) for m in client.get(page(tenant)).context["messages"]]
    assert messages == [
        "Import cancelled; nothing was changed.",
        "This preview is no longer available. Upload the file again.",
    ]


def test_a_preview_belongs_to_its_user(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    pending_id, _response = preview(client, tenant, export_bytes(tenant), "replace")
    intruder = Client()
    login(intruder, tenant)
    before = snapshot()
    response = intruder.get(page(tenant, "backup_import_preview", pending_id=pending_id))
    assert response.status_code == 302
    response = confirm(intruder, tenant, pending_id, tenant.name)
    assert response.status_code == 302
    assert snapshot() == before
