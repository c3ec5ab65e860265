"""The backup REST API: access by role, export stream, upload, preview and import, errors."""

import gzip
import re
import uuid

import pytest
import zstandard
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backup.errors import UploadTooLarge
from backup.statistics import tenant_statistics
from backup.web_requests import refuse_large_file
from tenants.models import AuditLog, MeterReading, Tenant, Vehicle

from . import factories as f
from .backup_support import (
    dump,
    export_bytes,
    parse,
    snapshot,
    tenant_snapshot,
    without_secrets,
)
from .broken_backups import CASES, CORPUS, TENANT

pytestmark = pytest.mark.django_db

ENDPOINTS = ["stats", "export", "export-sql", "import-preview", "import"]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()  # throttle history lives in the default cache
    yield
    cache.clear()


def member_of(tenant, role):
    user = f.UserFactory()
    f.MembershipFactory(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def owner(tenant):
    return member_of(tenant, "owner")


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def api(owner):
    return client_for(owner)


def url(name: str, slug: str = "north-pit") -> str:
    return reverse(f"backup-api:{name}", kwargs={"tenant": slug})


def backup_file(data: bytes, name: str = "backup.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


def preview(client, data: bytes, mode: str = "merge", slug: str = "north-pit", **fields):
    return client.post(
        url("import-preview", slug),
        {"file": backup_file(data), "mode": mode, **fields},
        format="multipart",
    )


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "details"}
    assert body["code"] == code, body
    assert body["message"]
    return body


def call(client, name: str, slug: str = "north-pit"):
    """Each endpoint with a request that passes validation, so access decides the answer."""
    if name in ("stats", "export-sql"):
        return client.get(url(name, slug))
    if name == "export":
        return client.post(url(name, slug), {}, format="json")
    if name == "import-preview":
        return preview(client, b"{}", slug=slug)
    return client.post(url(name, slug), {"upload_id": "x" * 32}, format="json")


# Access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENDPOINTS)
def test_anonymous_gets_401_with_www_authenticate(tenant, name):
    response = call(client_for(), name)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("name", ENDPOINTS)
def test_member_without_backup_rights_gets_403(tenant, name):
    response = call(client_for(member_of(tenant, "member")), name)
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_user_of_another_tenant_gets_404(tenant, other, name):
    response = call(client_for(member_of(other, "owner")), name)
    body = assert_error(response, 404, "not_found")
    assert "north-pit" in body["message"]


@pytest.mark.parametrize("slug", ["no-such-tenant", "bad%00slug", "sp ace"])
def test_unknown_or_malformed_slug_gets_404(owner, slug):
    assert_error(client_for(owner).get(url("stats", slug)), 404, "not_found")


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_may_use_every_endpoint(tenant, role):
    client = client_for(member_of(tenant, role))
    assert client.get(url("stats")).status_code == 200
    assert client.post(url("export")).status_code == 200
    assert preview(client, export_bytes(tenant)).status_code == 200
    assert_error(call(client, "import"), 404, "upload_not_found")
    assert_error(client.get(url("export-sql")), 410, "sql_export_not_supported")


def test_superuser_may_act_on_any_tenant(tenant, other):
    root = f.UserFactory(is_superuser=True, is_staff=True)
    client = client_for(root)
    for slug in ("north-pit", "south-pit"):
        assert client.get(url("stats", slug)).status_code == 200
    response = preview(client, export_bytes(other), slug="south-pit")
    assert response.status_code == 200
    result = client.post(
        url("import", "south-pit"), {"upload_id": response.json()["upload_id"]}, format="json"
    )
    assert result.status_code == 200 and result.json()["applied"] is True


def test_inactive_user_is_not_authenticated(tenant):
    user = member_of(tenant, "owner")
    token = Token.objects.create(user=user)
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert_error(client.get(url("stats")), 401, "authentication_failed")


def test_token_authentication(tenant, owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    assert client.get(url("stats")).status_code == 200
    response = client.post(url("export"), {"gzip": True}, format="json")
    assert response.status_code == 200 and response.streaming


def test_wrong_token_gets_401(tenant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = client.get(url("stats"))
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"


def test_session_authentication_with_csrf(tenant, owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get(url("stats")).status_code == 200
    # A session is a browser's: a POST without the CSRF token is refused.
    assert_error(client.post(url("export"), {}, format="json"), 403, "permission_denied")


# Stats and export ----------------------------------------------------------------------------


def test_stats_counts_every_table(api, tenant):
    response = api.get(url("stats"))
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == {"id": str(tenant.pk), "name": "North Pit", "slug": "north-pit"}
    assert body["tables"] == tenant_statistics(tenant)
    assert body["tables"]["vehicle"] == Vehicle.objects.filter(tenant=tenant).count() > 0
    assert body["total"] == sum(body["tables"].values())


FILENAME = re.compile(r'attachment; filename="north-pit-backup-\d{8}T\d{6}Z\.json(\.gz)?"')


def test_export_is_streamed_as_an_attachment(api, tenant, owner):
    response = api.post(url("export"))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    disposition = response["Content-Disposition"]
    assert FILENAME.fullmatch(disposition) and not disposition.endswith('.gz"')
    assert not AuditLog.objects.filter(action="backup.export").exists()  # nothing sent yet
    document = parse(b"".join(response.streaming_content))
    audit = AuditLog.objects.get(tenant=tenant, action="backup.export")
    assert audit.actor == owner
    assert document["metadata"]["tenant"]["slug"] == "north-pit"
    assert document["metadata"]["options"]["include_deleted"] is False
    assert document["tenant_data"] == parse(export_bytes(tenant))["tenant_data"]


def test_export_gzip_with_options_as_json(api, tenant):
    response = api.post(
        url("export"), {"gzip": True, "include_deleted": True, "include_audit_logs": True}
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/gzip"
    assert FILENAME.fullmatch(response["Content-Disposition"])
    assert response["Content-Disposition"].endswith('.json.gz"')
    document = parse(gzip.decompress(b"".join(response.streaming_content)))
    expected = parse(export_bytes(tenant, include_deleted=True, include_audit_logs=True))
    # The second export also sees the audit entry of the first.
    assert {**document["tenant_data"], "audit_log": []} == {
        **expected["tenant_data"],
        "audit_log": [],
    }
    assert (
        len(document["tenant_data"]["audit_log"]) == len(expected["tenant_data"]["audit_log"]) - 1
    )
    vehicles = Vehicle.objects.filter(tenant=tenant)
    assert len(document["tenant_data"]["vehicle"]) == vehicles.count()
    assert "audit_log" in document["tenant_data"]


def test_export_options_as_form(api, tenant):
    response = api.post(url("export"), {"include_deleted": "true"}, format="multipart")
    assert response.status_code == 200
    document = parse(b"".join(response.streaming_content))
    assert document["metadata"]["options"]["include_deleted"] is True


def test_export_bad_option_names_the_field(api, tenant):
    body = assert_error(
        api.post(url("export"), {"gzip": "perhaps"}, format="json"), 400, "invalid_request"
    )
    assert list(body["details"]) == ["gzip"]
    assert "gzip" in body["message"]


def test_malformed_json_body(api, tenant):
    response = api.post(url("export"), "{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_unsupported_media_type_and_method(api, tenant):
    response = api.post(url("export"), "x", content_type="text/csv")
    assert_error(response, 415, "unsupported_media_type")
    assert_error(api.get(url("export")), 405, "method_not_allowed")


def test_sql_export_is_gone(api, tenant):
    body = assert_error(api.get(url("export-sql")), 410, "sql_export_not_supported")
    assert "POST /api/v1/tenants/north-pit/backup/export/" in body["message"]
    assert body["details"] == {"method": "POST", "url": "/api/v1/tenants/north-pit/backup/export/"}


# Preview -------------------------------------------------------------------------------------


def test_merge_preview_of_an_unchanged_export_is_all_unchanged(api, tenant, upload_dir):
    before = snapshot(audit=False)
    response = preview(api, export_bytes(tenant))
    assert response.status_code == 200, response.content
    body = response.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,64}", body["upload_id"])
    assert body["expires_at"]
    report = body["preview"]
    assert report["applied"] is False and report["mode"] == "merge"
    assert report["tenant"]["slug"] == "north-pit"
    totals = report["totals"]
    assert totals["unchanged"] == totals["in_file"] > 0
    assert totals["create"] == totals["update"] == totals["delete"] == 0
    assert report["problems"] == []
    assert snapshot(audit=False) == before
    assert (upload_dir / (body["upload_id"] + ".backup")).exists()


@pytest.mark.parametrize(
    ("compress", "name"),
    [
        (gzip.compress, "b.json.gz"),
        (lambda data: zstandard.ZstdCompressor().compress(data), "b.json.zst"),
        (lambda data: zstandard.ZstdCompressor().compress(data), "b.json"),  # content decides
    ],
    ids=["gzip", "zstd", "zstd-named-json"],
)
def test_preview_of_a_compressed_file(api, tenant, compress, name):
    data = compress(export_bytes(tenant))
    response = api.post(
        url("import-preview"),
        {"file": backup_file(data, name), "mode": "merge"},
        format="multipart",
    )
    assert response.status_code == 200
    assert response.json()["preview"]["totals"]["create"] == 0


def test_non_json_file_is_invalid_not_a_server_error(api, tenant, upload_dir):
    before = snapshot(audit=False)
    body = assert_error(preview(api, b"\x00\x01 definitely not json"), 400, "invalid_file")
    assert body["details"] is None
    assert snapshot(audit=False) == before
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_file_failing_validation_lists_its_problems(api, tenant, upload_dir):
    document = parse(export_bytes(tenant))
    vehicle = document["tenant_data"]["vehicle"][0]
    vehicle["status"] = "flying"
    vehicle["commissioned_on"] = "yesterday"
    before = snapshot(audit=False)
    body = assert_error(preview(api, dump(document), mode="replace"), 400, "validation_failed")
    assert body["more_problems"] == 0
    problems = {(p["table"], p["field"]): p for p in body["details"]}
    assert set(problems) == {("vehicle", "status"), ("vehicle", "commissioned_on")}
    for problem in body["details"]:
        assert set(problem) == {"table", "row", "field", "message"}
        assert problem["row"] and problem["message"]
    assert "flying" in problems["vehicle", "status"]["message"]
    assert snapshot(audit=False) == before
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_more_problems_than_listed_are_counted(api, tenant, settings):
    settings.BACKUP_PROBLEM_LIMIT = 2
    document = parse(export_bytes(tenant))
    for reading in document["tenant_data"]["meter_reading"]:
        reading["value"] = True
    body = assert_error(preview(api, dump(document)), 400, "validation_failed")
    assert len(body["details"]) == 2
    assert {p["field"] for p in body["details"]} == {"value"}
    # Exactly the other readings: checks that find nothing add nothing once the list is full.
    assert body["more_problems"] == len(document["tenant_data"]["meter_reading"]) - 2 > 0
    assert f"(and {body['more_problems']} more)" in body["message"]


@pytest.fixture
def corpus_owner():
    call_command("loaddata", "fixtures/masterdata.json", verbosity=0)
    tenant = Tenant.objects.create(id=uuid.UUID(TENANT["id"]), name=TENANT["name"], slug="corpus")
    return member_of(tenant, "owner")


EXIT_STATUS = {3: (400, {"invalid_file", "unsupported_version"}), 4: (400, {"validation_failed"})}
EXIT_STATUS[5] = (409, {"refused"})


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_broken_backup_gets_its_error(corpus_owner, case):
    before = snapshot(audit=False)
    response = preview(client_for(corpus_owner), (CORPUS / case.name).read_bytes(), slug="corpus")
    if case.name == "empty.json":  # refused by the request's validation, before the service
        body = assert_error(response, 400, "invalid_request")
        assert body["details"] == {"file": ["The submitted file is empty."]}
        return
    status, codes = EXIT_STATUS[case.exit_code]
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] in codes
    texts = [body["message"]] + [p["message"] for p in body["details"] or []]
    assert any(case.message in text for text in texts), body
    assert snapshot(audit=False) == before


def test_backup_of_another_tenant_is_refused(api, tenant, other):
    body = assert_error(preview(api, export_bytes(other)), 409, "refused")
    assert "South Pit" in body["message"]
    response = preview(api, export_bytes(other), mode="new_tenant", new_tenant_slug="copy")
    assert_error(response, 409, "refused")
    assert not Tenant.objects.filter(slug="copy").exists()


def test_new_tenant_slug_taken_is_refused(api, tenant, other):
    response = preview(api, export_bytes(tenant), mode="new_tenant", new_tenant_slug="south-pit")
    body = assert_error(response, 409, "refused")
    assert "south-pit" in body["message"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mode": "overwrite"}, "mode"),
        ({"mode": "new_tenant"}, "new_tenant_slug"),
        ({"mode": "new_tenant", "new_tenant_slug": "not a slug"}, "new_tenant_slug"),
        ({"mode": "merge", "new_tenant_slug": "copy"}, "new_tenant_slug"),
        (
            {"mode": "merge", "create_missing_master_data": "sometimes"},
            "create_missing_master_data",
        ),
    ],
)
def test_bad_preview_fields_are_named(api, tenant, fields, field):
    response = api.post(
        url("import-preview"), {"file": backup_file(b"{}"), **fields}, format="multipart"
    )
    body = assert_error(response, 400, "invalid_request")
    assert list(body["details"]) == [field]
    assert field in body["message"]


def test_missing_file_is_named(api, tenant):
    response = api.post(url("import-preview"), {"mode": "merge"}, format="multipart")
    body = assert_error(response, 400, "invalid_request")
    assert list(body["details"]) == ["file"]


def test_upload_over_the_limit_gets_413(api, tenant, settings, upload_dir):
    settings.BACKUP_UPLOAD_MAX_BYTES = 1000
    before = snapshot(audit=False)
    response = preview(api, export_bytes(tenant))
    body = assert_error(response, 413, "upload_too_large")
    assert "at most 1,000 bytes" in body["message"]
    assert snapshot(audit=False) == before
    assert not upload_dir.exists()


def test_received_file_over_the_limit_is_refused(settings):
    settings.BACKUP_UPLOAD_MAX_BYTES = 10
    refuse_large_file(10)
    with pytest.raises(UploadTooLarge, match="11 bytes"):
        refuse_large_file(11)


# Import --------------------------------------------------------------------------------------


def test_merge_import_restores_a_deleted_reading(api, tenant, upload_dir):
    data = export_bytes(tenant)
    reading = MeterReading.objects.filter(tenant=tenant, vehicle__deleted_at__isnull=True).first()
    reading_id = reading.pk
    reading.delete()
    upload_id = preview(api, data).json()["upload_id"]
    response = api.post(url("import"), {"upload_id": upload_id}, format="json")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["applied"] is True and report["tables"]["meter_reading"]["create"] == 1
    assert report["totals"]["create"] == 1 and report["totals"]["update"] == 0
    assert MeterReading.objects.filter(pk=reading_id).exists()
    assert list(upload_dir.iterdir()) == []
    again = api.post(url("import"), {"upload_id": upload_id}, format="json")
    assert_error(again, 404, "upload_not_found")


def test_import_accepts_a_form_body(api, tenant):
    upload_id = preview(api, export_bytes(tenant)).json()["upload_id"]
    response = api.post(url("import"), {"upload_id": upload_id}, format="multipart")
    assert response.status_code == 200


def test_replace_needs_the_tenant_name(api, tenant):
    data = export_bytes(tenant)
    upload_id = preview(api, data, mode="replace").json()["upload_id"]
    before = tenant_snapshot(tenant)
    missing = api.post(url("import"), {"upload_id": upload_id}, format="json")
    assert_error(missing, 400, "confirmation_required")
    wrong = api.post(
        url("import"), {"upload_id": upload_id, "confirmation": "South Pit"}, format="json"
    )
    body = assert_error(wrong, 400, "confirmation_required")
    assert "North Pit" in body["message"]
    assert tenant_snapshot(tenant) == before
    right = api.post(
        url("import"), {"upload_id": upload_id, "confirmation": "North Pit"}, format="json"
    )
    assert right.status_code == 200, right.content
    report = right.json()
    assert report["applied"] is True and report["mode"] == "replace"
    assert report["tables"]["vehicle"]["delete"] == len(before["vehicle"])
    # The tenant now holds exactly what the backup held.
    restored = without_secrets(parse(export_bytes(tenant))["tenant_data"])
    assert restored == without_secrets(parse(data)["tenant_data"])
    assert Vehicle.objects.filter(tenant=tenant).count() == report["tables"]["vehicle"]["in_file"]


def test_new_tenant_restore_answers_201(api, tenant):
    response = preview(
        api,
        export_bytes(tenant),
        mode="new_tenant",
        new_tenant_slug="north-pit-restored",
        new_tenant_name="North Pit (restored)",
    )
    assert response.status_code == 200, response.content
    assert response.json()["preview"]["tenant"]["slug"] == "north-pit-restored"
    assert not Tenant.objects.filter(slug="north-pit-restored").exists()
    result = api.post(url("import"), {"upload_id": response.json()["upload_id"]}, format="json")
    assert result.status_code == 201, result.content
    body = result.json()
    restored = Tenant.objects.get(slug="north-pit-restored")
    assert body["tenant"] == {
        "id": str(restored.pk),
        "name": "North Pit (restored)",
        "slug": "north-pit-restored",
    }
    assert body["source_tenant"]["slug"] == "north-pit"
    assert tenant_statistics(restored)["vehicle"] == body["tables"]["vehicle"]["create"] > 0


def test_expired_upload_is_not_found(api, tenant, settings):
    settings.BACKUP_UPLOAD_TTL_SECONDS = 0
    upload_id = preview(api, export_bytes(tenant)).json()["upload_id"]
    response = api.post(url("import"), {"upload_id": upload_id}, format="json")
    assert_error(response, 404, "upload_not_found")


def test_upload_of_another_user_is_not_found(api, tenant):
    colleague = client_for(member_of(tenant, "admin"))
    upload_id = preview(colleague, export_bytes(tenant)).json()["upload_id"]
    before = snapshot(audit=False)
    response = api.post(url("import"), {"upload_id": upload_id}, format="json")
    assert_error(response, 404, "upload_not_found")
    assert snapshot(audit=False) == before
    # Still the colleague's to import.
    mine = colleague.post(url("import"), {"upload_id": upload_id}, format="json")
    assert mine.status_code == 200


def test_upload_for_another_tenant_is_not_found(tenant, other):
    root = client_for(f.UserFactory(is_superuser=True))
    upload_id = preview(root, export_bytes(tenant)).json()["upload_id"]
    response = root.post(url("import", "south-pit"), {"upload_id": upload_id}, format="json")
    assert_error(response, 404, "upload_not_found")


def test_import_without_upload_id_names_the_field(api, tenant):
    body = assert_error(api.post(url("import"), {}, format="json"), 400, "invalid_request")
    assert list(body["details"]) == ["upload_id"]


# Throttling ----------------------------------------------------------------------------------


@pytest.fixture
def low_rates(settings):
    settings.BACKUP_THROTTLE_RATES = {
        "export_per_user": "2/minute",
        "export_per_tenant": "3/minute",
        "import_per_user": "3/minute",
        "import_per_tenant": "5/minute",
    }


def test_export_is_throttled_per_user_and_per_tenant(api, tenant, low_rates):
    for _ in range(2):
        assert api.post(url("export")).status_code == 200
    response = api.post(url("export"))
    body = assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert body["details"]["retry_after"] == int(response["Retry-After"])
    # Another admin of the tenant: the tenant's third export of the minute, then its limit.
    other = client_for(member_of(tenant, "admin"))
    assert other.post(url("export")).status_code == 200
    assert_error(other.post(url("export")), 429, "throttled")
    # Another tenant's admin is counted apart, and stats are not throttled.
    elsewhere = f.TenantFactory(slug="south-pit")
    assert (
        client_for(member_of(elsewhere, "admin")).post(url("export", "south-pit")).status_code
        == 200
    )
    assert api.get(url("stats")).status_code == 200


def test_preview_and_import_share_a_throttle(api, tenant, low_rates):
    data = export_bytes(tenant)
    upload_id = preview(api, data).json()["upload_id"]
    assert preview(api, data).status_code == 200
    assert api.post(url("import"), {"upload_id": upload_id}, format="json").status_code == 200
    response = preview(api, data)
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


# Schema and docs -----------------------------------------------------------------------------


def test_schema_is_valid_openapi_and_documents_every_endpoint(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    prefix = "/api/v1/tenants/{tenant}/backup/"
    operations = {
        (path.removeprefix(prefix), method)
        for path, item in schema["paths"].items()
        if path.startswith(prefix)  # stored backups are tested in test_api_stored.py
        for method in item
    }
    assert operations == {
        ("stats/", "get"),
        ("export/", "post"),
        ("export.sql", "get"),
        ("import/preview/", "post"),
        ("import/", "post"),
    }
    error = "#/components/schemas/Error"
    for item in schema["paths"].values():
        for operation in item.values():
            responses = operation["responses"]
            assert responses["401"]["content"]["application/json"]["schema"]["$ref"] == error
            assert "404" in responses
    preview_body = schema["paths"][prefix + "import/preview/"]["post"]["requestBody"]
    assert list(preview_body["content"]) == ["multipart/form-data"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()


def test_only_superusers_may_create_missing_master_data(api, tenant):
    data = export_bytes(tenant)
    body = assert_error(
        preview(api, data, create_missing_master_data="true"), 403, "permission_denied"
    )
    assert "superusers" in body["message"]
    superuser = f.UserFactory(is_superuser=True, is_staff=True)
    response = preview(client_for(superuser), data, create_missing_master_data="true")
    assert response.status_code == 200, response.content


# Outside a test transaction, as a server runs: closing a response ends the request, whose
# handler would otherwise close the connection a test transaction holds.
@pytest.mark.django_db(transaction=True)
def test_a_download_the_client_leaves_is_audited_as_incomplete(api, tenant):
    response = api.post(url("export"), {}, format="json")
    next(iter(response.streaming_content))
    response.close()  # what the server does when the client goes away
    (entry,) = AuditLog.objects.filter(tenant=tenant, action="backup.export")
    assert entry.details["outcome"] == "incomplete"
    assert entry.details["stopped_by"] == "the download was stopped"
