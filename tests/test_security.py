"""The defects an attacker's probe of the web surface found, one test each (issue 24).

Each test fails on the code before its fix; where a crafted request is refused, the database,
the upload storage and the audit trail are compared before and after.
"""

import gzip
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import Client

from backup.errors import InvalidFile, Refused, ValidationFailed
from backup.restore import ImportOptions, Mode, import_backup, preview_import
from backup.uploads import upload_storage
from masterdata.models import OEM
from tenants.models import AuditLog, IntegrationCredential, Membership, Tenant
from tests import factories as f
from tests import test_admin_backup as page_helpers
from tests import test_api as api_helpers
from tests.backup_support import dump, export_bytes, parse, populate, snapshot
from tests.broken_backups import VALID

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tenant() -> Tenant:
    tenant = f.TenantFactory(slug="north-pit", name="North Pit")
    populate(tenant)
    return tenant


@pytest.fixture
def owner(tenant: Tenant) -> Any:
    return api_helpers.member_of(tenant, "owner")


@pytest.fixture
def api(owner: Any) -> Any:
    return api_helpers.client_for(owner)


def stored_uploads() -> list[str]:
    try:
        return sorted(upload_storage().listdir("")[1])
    except FileNotFoundError:
        return []


def state() -> dict[str, Any]:
    """Everything a refused request must leave as it was: every table but the sessions, the
    audit trail apart (a refusal may add its own entry, nothing else), and the stored uploads."""
    rows = snapshot()
    rows.pop("sessions.Session", None)
    audit = rows.pop("tenants.AuditLog")
    return {"rows": rows, "audit": audit, "uploads": stored_uploads()}


def assert_unchanged_but_audited(before: dict[str, Any], *actions: str) -> None:
    after = state()
    assert after["rows"] == before["rows"]
    assert after["uploads"] == before["uploads"]
    known = {row["id"] for row in before["audit"]}
    assert all(row["id"] in known for row in before["audit"])
    added = [row for row in after["audit"] if row["id"] not in known]
    assert [(row["action"], row["details"]["outcome"]) for row in added] == [
        (action, "failed") for action in actions
    ]
    assert [row for row in after["audit"] if row["id"] in known] == before["audit"]


# 1. Numbers too long to read ----------------------------------------------------------------

# Run in a subprocess: without the guard, ijson's C parser kills the process (SIGSEGV).
SWEEP = textwrap.dedent(
    """
    import gzip, io, json, os, sys
    import django
    django.setup()
    from backup.errors import InvalidFile
    from backup.format.reader import BackupReader
    from backup.format.streams import open_input
    from tests.broken_backups import _in_attributes

    READ = 64 * 1024  # what ijson reads at a time
    limit = sys.get_int_max_str_digits()
    base = _in_attributes(b"@@")
    at = base.index(b"@@")

    def read_all(data):
        with open_input(io.BytesIO(data)) as stream:
            reader = BackupReader(stream)
            reader.object_section("metadata")
            reader.object_section("schema")
            for section in ("master_data", "tenant_data"):
                for _table, rows in reader.table_section(section):
                    for _row in rows:
                        pass
            reader.object_section("statistics")
            reader.finish()

    outcomes = {}
    for length in (limit - 1, limit, limit + 1, limit + 2, 2 * limit + 1, 70_000):
        step = max(length // 40, 1)
        for inside in sorted({*range(0, length + 2, step), 1, 2, length - 1, length, length + 1}):
            # `inside` digits of the number come before the read boundary.
            for quoted in (False, True):
                start = READ - inside - (1 if quoted else 0)
                digits = b"9" * length
                value = b'"' + digits + b'"' if quoted else digits
                data = base[:at] + b" " * (start - at) + value + base[at + 2:]
                for packed in (False, True) if inside in (0, length // 2) else (False,):
                    try:
                        read_all(gzip.compress(data, mtime=0) if packed else data)
                        outcome = "read"
                    except InvalidFile as exc:
                        assert "a number of" in exc.message, exc.message
                        outcome = "refused"
                    key = f"{length} {'string' if quoted else 'number'}"
                    outcomes.setdefault(key, set()).add(outcome)
    print(json.dumps({key: sorted(found) for key, found in outcomes.items()}))
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {
        **__import__("os").environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_no_number_of_any_length_at_any_offset_crashes_the_reader() -> None:
    done = _run(SWEEP)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    outcomes = json.loads(done.stdout)
    limit = sys.get_int_max_str_digits()
    for key, found in outcomes.items():
        length, kind = key.split()
        expected = "refused" if kind == "number" and int(length) > limit else "read"
        assert found == [expected], key
    assert len(outcomes) == 12


def test_the_parser_alone_still_crashes_on_such_a_number() -> None:
    """Why the guard exists: when this starts to pass, ijson checks its integers itself and the
    guard (`backup.number_guard`) may go."""
    done = _run(
        "import io, ijson\n"
        "doc = b'[' + b' ' * 65530 + b'9' * 4301 + b']'\n"
        "for event, value in ijson.basic_parse(io.BytesIO(doc)):\n"
        "    str(value)\n"
    )
    assert done.returncode == -11, (done.returncode, done.stderr[-500:])


def test_long_digits_inside_a_string_are_text(tenant: Tenant) -> None:
    document = parse(export_bytes(tenant))
    site = document["tenant_data"]["site"][0]
    site["address"] = "9" * 10_000
    import_backup(io.BytesIO(dump(document)), tenant=tenant)
    assert tenant_sites_address(tenant, site["id"]) == "9" * 10_000


def tenant_sites_address(tenant: Tenant, site_id: str) -> str:
    from tenants.models import Site

    return Site.objects.get(tenant=tenant, pk=site_id).address


def test_a_long_number_is_refused_through_the_api(api: Any, tenant: Tenant) -> None:
    document = parse(export_bytes(tenant))
    document["tenant_data"]["vehicle"][0]["attributes"] = {"payload_t": 7_777_777_777}
    data = dump(document).replace(b"7777777777", b" " * 70_000 + b"9" * 5000)
    before = state()
    body = api_helpers.assert_error(api_helpers.preview(api, data), 400, "invalid_file")
    assert "a number of 5000 digits, more than the 4300 an import reads" in body["message"]
    assert_unchanged_but_audited(before, "backup.preview")


# 2. Work amplification ----------------------------------------------------------------------


def _bad_rows(count: int, tail: bytes = b"]}}") -> bytes:
    """The valid file with `count` rows that are not objects in its meter readings, then
    `tail`, gzip-compressed: a few kilobytes."""
    head, rest = VALID.split(b'"meter_reading":[', 1)
    return gzip.compress(head + b'"meter_reading":[' + b"1," * count + rest, mtime=0)


def test_checking_stops_far_past_the_problem_limit(settings: Any) -> None:
    """A million bad rows in a small gzip: checking stops at ten times the listed problems.
    The file is cut off after them, so reading on to its end would be an `InvalidFile`."""
    settings.BACKUP_PROBLEM_LIMIT = 50
    data = _bad_rows(1_000_000)
    data = gzip.compress(gzip.decompress(data)[:-200], mtime=0)
    assert len(data) < 16_000
    with pytest.raises(ValidationFailed) as failed:
        preview_import(
            io.BytesIO(data), options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="x")
        )
    assert failed.value.stopped
    assert len(failed.value.problems) == 50
    assert "at least 500 problems: checking stopped there" in failed.value.message


def test_an_upload_is_capped_at_its_decompressed_size(
    api: Any, tenant: Tenant, settings: Any
) -> None:
    settings.BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES = 1_000_000
    document = parse(export_bytes(tenant))
    document["tenant_data"]["site"][0]["address"] = " " * 2_000_000
    packed = gzip.compress(dump(document), mtime=0)
    assert len(packed) < 20_000
    before = state()
    body = api_helpers.assert_error(api_helpers.preview(api, packed), 400, "invalid_file")
    assert "larger than the 1,000,000 bytes (decompressed)" in body["message"]
    assert_unchanged_but_audited(before, "backup.preview")
    # The command line, an operator's, has no such cap.
    report = preview_import(io.BytesIO(packed), tenant=tenant)
    assert report.tables["site"].update == 1


# 3. A merge that redirects a kept secret ----------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint_url", "https://collector.attacker.example/"),
        ("username", "someone-else"),
        ("provider", "webhook"),
        ("config", {"host": "attacker.example"}),
    ],
)
def test_a_merge_that_moves_a_secret_clears_it(tenant: Tenant, field: str, value: Any) -> None:
    credential = IntegrationCredential.objects.get(tenant=tenant)
    assert credential.secret and not credential.secret_needs_reentry
    document = parse(export_bytes(tenant))
    (row,) = document["tenant_data"]["integration_credential"]
    row[field] = value
    import_backup(io.BytesIO(dump(document)), tenant=tenant)
    credential.refresh_from_db()
    assert credential.secret == ""
    assert credential.secret_needs_reentry
    assert getattr(credential, field) == value


def test_the_preview_says_which_secrets_a_merge_will_clear(api: Any, tenant: Tenant) -> None:
    document = parse(export_bytes(tenant))
    (row,) = document["tenant_data"]["integration_credential"]
    row["endpoint_url"] = "https://collector.attacker.example/"
    data = dump(document)
    report = preview_import(io.BytesIO(data), tenant=tenant)
    assert report.notices == [
        "1 integration credential will lose its secret: the backup changes where it is sent "
        "(provider, endpoint_url, username, config). Enter it again after the import."
    ]
    assert api_helpers.preview(api, data).json()["preview"]["notices"] == report.notices
    client = Client()
    page_helpers.login(client, tenant)
    _pending, page = page_helpers.preview(client, tenant, data)
    assert "will lose its secret" in page_helpers.text(page)
    # Unchanged, nothing to say.
    assert preview_import(io.BytesIO(export_bytes(tenant)), tenant=tenant).notices == []


def test_a_merge_that_keeps_the_destination_keeps_the_secret(tenant: Tenant) -> None:
    credential = IntegrationCredential.objects.get(tenant=tenant)
    secret = credential.secret
    document = parse(export_bytes(tenant))
    (row,) = document["tenant_data"]["integration_credential"]
    row["is_active"] = not row["is_active"]
    row["name"] = "Renamed"
    import_backup(io.BytesIO(dump(document)), tenant=tenant)
    credential.refresh_from_db()
    assert (credential.secret, credential.secret_needs_reentry) == (secret, False)
    assert credential.name == "Renamed"


# 4. Privileges rechecked when the import runs -----------------------------------------------


def _with_unknown_oem(tenant: Tenant) -> bytes:
    document = parse(export_bytes(tenant))
    document["master_data"]["oem"][0]["name"] = "Imaginary Machines"
    return dump(document)


def test_a_privilege_lost_after_the_preview_is_not_used(tenant: Tenant) -> None:
    boss = f.UserFactory(is_superuser=True, is_staff=True)
    client = api_helpers.client_for(boss)
    response = api_helpers.preview(
        client, _with_unknown_oem(tenant), create_missing_master_data="true"
    )
    assert response.status_code == 200, response.content
    upload_id = response.json()["upload_id"]
    boss.is_superuser = False
    boss.save()
    f.MembershipFactory(tenant=tenant, user=boss, role="owner")  # still manages the tenant
    before = state()
    response = client.post(api_helpers.url("import"), {"upload_id": upload_id}, format="json")
    body = api_helpers.assert_error(response, 403, "permission_denied")
    assert "only superusers" in body["message"]
    assert not OEM.objects.filter(name="Imaginary Machines").exists()
    before["uploads"] = []  # a refused import discards its upload
    assert_unchanged_but_audited(before, "backup.import")


def test_the_service_checks_the_privilege_itself(tenant: Tenant) -> None:
    admin = api_helpers.member_of(tenant, "admin")
    with pytest.raises(Refused, match="only superusers"):
        import_backup(
            io.BytesIO(_with_unknown_oem(tenant)),
            tenant=tenant,
            options=ImportOptions(create_missing_master_data=True),
            actor=admin,
        )
    assert not OEM.objects.filter(name="Imaginary Machines").exists()


# 5. One throttle for every entry point -------------------------------------------------------


def test_the_page_export_shares_the_apis_throttle(tenant: Tenant, settings: Any) -> None:
    settings.BACKUP_THROTTLE_RATES = {**settings.BACKUP_THROTTLE_RATES, "export_per_user": "2/hour"}
    client = Client()
    person = page_helpers.login(client, tenant)
    assert api_helpers.client_for(person).post(api_helpers.url("export")).status_code == 200
    assert client.post(page_helpers.page(tenant, "backup_export")).status_code == 200
    response = client.post(page_helpers.page(tenant, "backup_export"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many exports" in page_helpers.text(response)


def test_the_page_upload_is_throttled_per_tenant(tenant: Tenant, settings: Any) -> None:
    settings.BACKUP_THROTTLE_RATES = {
        **settings.BACKUP_THROTTLE_RATES,
        "import_per_tenant": "1/hour",
    }
    data = export_bytes(tenant)
    first, second = Client(), Client()
    page_helpers.login(first, tenant)
    page_helpers.login(second, tenant)
    assert page_helpers.upload(first, tenant, data).status_code == 302
    before = state()
    response = page_helpers.upload(second, tenant, data)
    assert response.status_code == 429
    assert_unchanged_but_audited(before)


# 6. No account enumeration through memberships ----------------------------------------------


def _membership_named(tenant: Tenant, email: str) -> bytes:
    document = parse(export_bytes(tenant))
    row = dict(document["tenant_data"]["membership"][0])
    row.update(id="0d5b8f2e-7c1a-4e6b-9a3d-2f4e6a8c0b1d", user=email, role="member")
    document["tenant_data"]["membership"].append(row)
    document["statistics"]["membership"] += 1
    return dump(document)


def test_an_email_with_an_account_elsewhere_is_answered_like_an_unknown_one(
    api: Any, tenant: Tenant
) -> None:
    elsewhere = f.TenantFactory(slug="elsewhere")
    outsider = f.UserFactory(email="someone@elsewhere.example")
    f.MembershipFactory(tenant=elsewhere, user=outsider, role="owner")
    answers = []
    for email in ("someone@elsewhere.example", "nobody@nowhere.example"):
        data = _membership_named(tenant, email)
        before = state()
        response = api_helpers.preview(api, data)
        body = api_helpers.assert_error(response, 400, "validation_failed")
        answers.append([p["message"].replace(email, "EMAIL") for p in body["details"]])
        assert_unchanged_but_audited(before, "backup.preview")
    assert answers[0] == answers[1] == ["no user with email 'EMAIL' among this tenant's members"]
    assert not Membership.objects.filter(user=outsider, tenant=tenant).exists()


def test_an_operator_may_name_any_account(tenant: Tenant) -> None:
    outsider = f.UserFactory(email="someone@elsewhere.example")
    import_backup(io.BytesIO(_membership_named(tenant, outsider.email)), tenant=tenant)
    assert Membership.objects.get(user=outsider, tenant=tenant).role == "member"


# 7. Ambiguous uploads ------------------------------------------------------------------------


def _file(data: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


def test_two_file_parts_are_refused_by_the_api(api: Any, tenant: Tenant) -> None:
    data = export_bytes(tenant)
    before = state()
    response = api.post(
        api_helpers.url("import-preview"),
        {"file": [_file(data, "a.json"), _file(data, "b.json")], "mode": "merge"},
        format="multipart",
    )
    body = api_helpers.assert_error(response, 400, "ambiguous_request")
    assert "more than one part named 'file'" in body["message"]
    assert_unchanged_but_audited(before)


def test_two_file_parts_are_refused_by_the_page(tenant: Tenant) -> None:
    client = Client()
    page_helpers.login(client, tenant)
    data = export_bytes(tenant)
    before = state()
    response = client.post(
        page_helpers.page(tenant, "backup_import"),
        {"file": [_file(data, "a.json"), _file(data, "b.json")], "mode": "merge"},
    )
    assert response.status_code == 400
    assert "more than one part named &#x27;file&#x27;" in page_helpers.text(response)
    assert_unchanged_but_audited(before)


# 8. Imported audit entries never pass for this server's -------------------------------------


def test_imported_audit_entries_are_stamped_as_imported(tenant: Tenant) -> None:
    root = f.UserFactory(is_superuser=True, email="root@platform.example")
    importer = api_helpers.member_of(tenant, "owner")
    document = parse(export_bytes(tenant, include_audit_logs=True))
    forged = dict(document["tenant_data"]["audit_log"][0])
    forged.update(
        id="6f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8",
        actor=root.email,
        actor_email=root.email,
        action="tenant.deleted",
        created_at="2020-01-01T00:00:00.000000Z",
        imported_at=None,
        imported_by="",
    )
    document["tenant_data"]["audit_log"].append(forged)
    document["statistics"]["audit_log"] += 1
    native = {row.pk: row.imported_at for row in AuditLog.objects.filter(tenant=tenant)}
    report = import_backup(io.BytesIO(dump(document)), tenant=tenant, actor=importer)

    entry = AuditLog.objects.get(pk=forged["id"])
    assert entry.imported_at is not None
    assert entry.imported_by == importer.email
    assert entry.import_id == report.import_id
    assert entry.actor is None  # root is no member of the tenant: an owner cannot name root
    assert "(imported)" in str(entry)
    # The import's own entry, written by this server, names the backup the entry came from.
    own = AuditLog.objects.get(action="backup.import", details__import_id=str(report.import_id))
    assert own.imported_at is None
    assert own.details["sha256"] == report.sha256
    # The entries that were here are left as they were.
    for pk, imported_at in native.items():
        assert AuditLog.objects.get(pk=pk).imported_at == imported_at is None


# 9. The page refuses a large body before reading it -----------------------------------------


class _Unread(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    read_from = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        type(self).read_from = True
        raise AssertionError("the body was read")


@pytest.mark.parametrize("where", ["page", "api"])
def test_a_declared_large_body_is_refused_unread(tenant: Tenant, owner: Any, where: str) -> None:
    client = Client(enforce_csrf_checks=True)
    if where == "page":
        owner.is_staff = True
        owner.save()
        path = page_helpers.page(tenant, "backup_import")
    else:
        path = api_helpers.url("import-preview")
    client.force_login(owner)
    _Unread.read_from = False
    response = client.generic(
        "POST",
        path,
        b"",
        content_type="multipart/form-data; boundary=xyz",
        **{"CONTENT_LENGTH": str(50 * 1024**3), "wsgi.input": _Unread()},
    )
    assert response.status_code == 413
    assert not _Unread.read_from


# 10. Slugs are unique without regard to case ------------------------------------------------


def test_a_slug_differing_only_in_case_is_refused(tenant: Tenant) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Tenant.objects.create(slug="NORTH-PIT", name="Shadow")
    data = export_bytes(tenant)
    with pytest.raises(Refused, match="already exists"):
        import_backup(
            io.BytesIO(data),
            options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="North-Pit"),
        )
    assert Tenant.objects.filter(slug__iexact="north-pit").count() == 1


# Text a database cannot store ----------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.MERGE, Mode.REPLACE, Mode.NEW_TENANT])
@pytest.mark.parametrize("where", ["string", "json value", "json key"])
def test_a_nul_character_is_a_listed_problem(tenant: Tenant, mode: Mode, where: str) -> None:
    document = parse(export_bytes(tenant))
    vehicle = document["tenant_data"]["vehicle"][0]
    if where == "string":
        vehicle["fleet_number"] = "HT\x0001"
    elif where == "json value":
        vehicle["attributes"] = {"tyres": "59/80\x00R63"}
    else:
        vehicle["attributes"] = {"ty\x00res": 1}
    options = ImportOptions(mode=mode, new_tenant_slug="copy" if mode == Mode.NEW_TENANT else "")
    before = snapshot()
    with pytest.raises(ValidationFailed) as failed:
        import_backup(
            io.BytesIO(dump(document)),
            tenant=None if mode == Mode.NEW_TENANT else tenant,
            options=options,
        )
    (problem,) = failed.value.problems
    assert problem.table == "vehicle"
    assert problem.field == ("fleet_number" if where == "string" else "attributes")
    assert "contains a NUL character" in problem.message
    after = snapshot()
    added = [r for r in after.pop("tenants.AuditLog") if r not in before["tenants.AuditLog"]]
    before.pop("tenants.AuditLog")
    assert after == before
    assert len(added) == (0 if mode == Mode.NEW_TENANT else 1)


def test_bytes_that_are_not_utf8_are_an_invalid_file(tenant: Tenant) -> None:
    data = VALID.replace(b"East Pit", b"East \xed\xa0\x80Pit")
    with pytest.raises(InvalidFile, match="not valid UTF-8"):
        preview_import(
            io.BytesIO(data), options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="x")
        )


def test_a_tenant_name_in_the_metadata_must_be_storable(tenant: Tenant) -> None:
    document = parse(VALID)
    document["metadata"]["tenant"]["name"] = "Corpus\x00Quarry"
    with pytest.raises(InvalidFile, match=r"metadata.tenant.name: .*NUL character"):
        preview_import(
            io.BytesIO(dump(document)),
            options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="copy"),
        )


def test_master_data_is_capped_in_rows(tenant: Tenant, settings: Any) -> None:
    settings.BACKUP_MAX_MASTER_ROWS = 3
    document = parse(VALID)
    oem = document["master_data"]["oem"][0]
    document["master_data"]["oem"] = [dict(oem, id=i, name=f"OEM {i}") for i in range(1, 5)]
    with pytest.raises(InvalidFile, match=r"more than 3 rows of master data .* master_data.oem"):
        preview_import(
            io.BytesIO(dump(document)),
            options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="copy"),
        )


def _has_long_number(document: bytes, limit: int) -> bool:
    """The reference: Python's own JSON parser, handing each number's text to a check."""
    found = False

    def number(text: str) -> int:
        nonlocal found
        runs = "".join(c if c.isdigit() else " " for c in text).split()
        found = found or max(map(len, runs)) > limit
        return 0

    json.loads(document, parse_int=number, parse_float=number)
    return found


@pytest.mark.parametrize("chunk", [1, 7, 100, 777, 65536])
def test_the_number_guard_agrees_with_a_json_parser_in_chunks_of_any_size(chunk: int) -> None:
    from backup.format.number_guard import NumberGuard, NumberTooLong

    limit = 50
    pieces = [
        b"1" * 51,
        b"-" + b"2" * 51,
        b"3" * 50,
        b"0." + b"4" * 51,
        b'"' + b"5" * 120 + b'"',
        b'"a\\"' + b"6" * 60 + b'"',
        b'"\\\\"',
        b'"x\\\\' + b'"',
    ]
    for picked in range(1, 1 << len(pieces)):
        chosen = [p for i, p in enumerate(pieces) if picked >> i & 1]
        document = b'{"k": [' + b", ".join(chosen) + b'], "s": "' + b"7" * 70 + b'"}'
        guard = NumberGuard(limit)
        try:
            for start in range(0, len(document), chunk):
                guard.check(document[start : start + chunk])
            refused = False
        except NumberTooLong:
            refused = True
        assert refused == _has_long_number(document, limit), document


def test_the_page_upload_still_needs_its_csrf_token(tenant: Tenant) -> None:
    """The size is checked before Django's CSRF check reads the body; the check itself stays."""
    client = Client(enforce_csrf_checks=True)
    page_helpers.login(client, tenant)
    data = export_bytes(tenant)
    before = state()
    response = client.post(
        page_helpers.page(tenant, "backup_import"), {"file": _file(data, "a.json"), "mode": "merge"}
    )
    assert response.status_code == 403
    assert_unchanged_but_audited(before)
    token = client.get(page_helpers.page(tenant)).cookies["csrftoken"].value
    response = client.post(
        page_helpers.page(tenant, "backup_import"),
        {"file": _file(data, "a.json"), "mode": "merge", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
