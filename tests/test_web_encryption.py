"""Encrypted backups on Admin > Backup and through the API: downloads encrypted to the
deployment's keys or with a passphrase typed in, and encrypted uploads opened with a passphrase
(asked again for the import, never kept) or with the deployment's key. Bad keys and passphrases
are clear errors that leave the database as it was."""

import gzip
import json
import re
import subprocess

import pyrage
import pytest
from django.test import Client

from tenants.models import AuditLog, TCOScenario

from .backup_support import as_plain, export_bytes, parse
from .test_admin_backup import confirm, counts, database, login, page, stored_uploads, text
from .test_admin_backup import preview as page_preview
from .test_admin_backup import upload as page_upload
from .test_api import assert_error, client_for, member_of, url
from .test_api import preview as api_preview
from .test_encryption import keypair

pytestmark = pytest.mark.django_db
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def deployment_key(settings, tmp_path):
    identity, public = keypair(tmp_path, "deployment")
    settings.BACKUP_AGE_RECIPIENTS = [public]
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    return identity


def with_passphrase(data: bytes, passphrase: str = PASSPHRASE) -> bytes:
    return pyrage.passphrase.encrypt(data, passphrase)


def to_key(data: bytes, identity) -> bytes:
    public = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(public)])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def document_of(ciphertext: bytes, *, passphrase: str = "", identity=None) -> dict:
    if passphrase:
        plain = pyrage.passphrase.decrypt(ciphertext, passphrase)
    else:  # the real `age` command
        plain = subprocess.run(
            ["age", "-d", "-i", str(identity)], input=ciphertext, check=True, capture_output=True
        ).stdout
    return parse(gzip.decompress(plain))


# -- the page: downloads -----------------------------------------------------------------------


def test_page_download_encrypted_with_a_passphrase(client: Client, tenant) -> None:
    login(client, tenant)
    response = client.post(
        page(tenant, "backup_export"),
        {"encryption": "passphrase", "passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE},
    )
    assert response.status_code == 200
    assert re.fullmatch(
        r'attachment; filename="north-pit-backup-\d{8}T\d{6}Z\.json\.gz\.age"',
        response["Content-Disposition"],
    )
    ciphertext = body(response)
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    document = document_of(ciphertext, passphrase=PASSPHRASE)
    assert as_plain(document["tenant_data"]) == parse(export_bytes(tenant))["tenant_data"]
    audited = AuditLog.objects.filter(tenant=tenant, action="backup.export").earliest("created_at")
    assert audited.details["encrypted"] == "passphrase"
    assert PASSPHRASE not in json.dumps(audited.details)


def test_page_download_encrypted_to_the_deployment_keys(
    client: Client, tenant, deployment_key
) -> None:
    login(client, tenant)
    assert "To this deployment&#x27;s age keys" in text(client.get(page(tenant)))
    response = client.post(page(tenant, "backup_export"), {"encryption": "keys"})
    assert response.status_code == 200
    document = document_of(body(response), identity=deployment_key)
    assert document["metadata"]["tenant"]["id"] == str(tenant.pk)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"encryption": "passphrase"}, "passphrase", "Type the passphrase"),
        (
            {"encryption": "passphrase", "passphrase": PASSPHRASE, "passphrase_again": "other"},
            "passphrase_again",
            "The two passphrases differ",
        ),
        ({"encryption": "keys"}, "encryption", "Select a valid choice"),
    ],
)
def test_page_download_refused_with_what_is_wrong(client: Client, tenant, fields, field, message):
    login(client, tenant)
    response = client.post(page(tenant, "backup_export"), fields)
    assert response.status_code == 400
    assert message in " ".join(response.context["export_form"].errors[field])


# -- the page: uploads -------------------------------------------------------------------------


def test_page_upload_with_a_passphrase_asks_for_it_again_to_import(client: Client, tenant):
    login(client, tenant)
    backup = with_passphrase(export_bytes(tenant))
    TCOScenario.objects.filter(tenant=tenant).delete()
    pending_id, response = page_preview(client, tenant, backup, passphrase=PASSPHRASE)
    assert response.context["report"]["totals"]["create"] == 1
    assert 'name="passphrase"' in response.content.decode()
    before = database()
    refused = confirm(client, tenant, pending_id)  # no passphrase: nothing imported, kept
    assert refused.status_code == 400
    assert "type the passphrase" in " ".join(refused.context["form"].errors["passphrase"])
    assert database() == before and len(stored_uploads()) == 2
    response = client.post(
        page(tenant, "backup_import_confirm"),
        {"pending_id": pending_id, "passphrase": "wrong"},
    )
    assert response.status_code == 400
    assert "passphrase is wrong" in " ".join(response.context["form"].errors["passphrase"])
    assert database() == before and len(stored_uploads()) == 2
    response = client.post(
        page(tenant, "backup_import_confirm"),
        {"pending_id": pending_id, "passphrase": PASSPHRASE},
    )
    assert response.status_code == 302
    assert counts(tenant)["tco_scenario"] == 1 and stored_uploads() == []


@pytest.mark.parametrize(
    ("passphrase", "message"),
    [
        ("", "The file is encrypted (age): type the passphrase"),
        ("wrong", "the passphrase is wrong"),
    ],
)
def test_page_upload_without_the_right_passphrase_is_refused(
    client: Client, tenant, passphrase, message
):
    login(client, tenant)
    before = database()
    response = page_upload(
        client, tenant, with_passphrase(export_bytes(tenant)), passphrase=passphrase
    )
    assert response.status_code == 400
    assert message in text(response)
    assert database() == before and stored_uploads() == []


def test_page_upload_with_a_passphrase_for_a_plain_file_is_refused(client: Client, tenant):
    login(client, tenant)
    response = page_upload(client, tenant, export_bytes(tenant), passphrase=PASSPHRASE)
    assert response.status_code == 400 and "The file is not encrypted" in text(response)
    assert stored_uploads() == []


def test_page_upload_encrypted_to_the_deployment_key_needs_no_passphrase(
    client: Client, tenant, deployment_key
):
    login(client, tenant)
    backup = to_key(export_bytes(tenant), deployment_key)
    TCOScenario.objects.filter(tenant=tenant).delete()
    pending_id, response = page_preview(client, tenant, backup)
    assert 'name="passphrase"' not in response.content.decode()
    assert confirm(client, tenant, pending_id).status_code == 302
    assert counts(tenant)["tco_scenario"] == 1


def test_page_upload_encrypted_to_another_key_asks_for_a_passphrase(
    client: Client, tenant, deployment_key, tmp_path
):
    login(client, tenant)
    other, _ = keypair(tmp_path, "other")
    before = database()
    response = page_upload(client, tenant, to_key(export_bytes(tenant), other))
    assert response.status_code == 400
    assert "not to this deployment&#x27;s keys: type the passphrase" in text(response)
    assert database() == before and stored_uploads() == []


# -- the API -----------------------------------------------------------------------------------


@pytest.fixture
def api(tenant):
    return client_for(member_of(tenant, "owner"))


def test_api_download_encrypted_with_a_passphrase(api, tenant) -> None:
    response = api.post(
        url("export"),
        {"encryption": "passphrase", "passphrase": PASSPHRASE},
        format="json",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].endswith('.json.gz.age"')
    document = document_of(body(response), passphrase=PASSPHRASE)
    assert document["metadata"]["tenant"]["slug"] == "north-pit"


def test_api_download_encrypted_to_the_deployment_keys(api, tenant, deployment_key) -> None:
    response = api.post(url("export"), {"encryption": "keys"}, format="json")
    assert response.status_code == 200
    assert document_of(body(response), identity=deployment_key)["metadata"]["tenant"]["slug"] == (
        "north-pit"
    )


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"encryption": "keys"}, "invalid_key", None),
        ({"encryption": "passphrase"}, "invalid_request", "passphrase"),
        ({"passphrase": PASSPHRASE}, "invalid_request", "passphrase"),
        ({"encryption": "rot13"}, "invalid_request", "encryption"),
    ],
)
def test_api_download_refused_with_what_is_wrong(api, tenant, fields, code, field) -> None:
    response = api.post(url("export"), fields, format="json")
    body_ = assert_error(response, 400, code)
    if field:
        assert field in body_["details"]
    else:
        assert "no age keys" in body_["message"]


def test_api_upload_with_a_passphrase_then_import_with_it_again(api, tenant) -> None:
    backup = with_passphrase(export_bytes(tenant))
    TCOScenario.objects.filter(tenant=tenant).delete()
    response = api_preview(api, backup, passphrase=PASSPHRASE)
    assert response.status_code == 200, response.content
    upload_id = response.json()["upload_id"]
    assert response.json()["preview"]["totals"]["create"] == 1
    before = database()
    missing = api.post(url("import"), {"upload_id": upload_id}, format="json")
    assert "type the passphrase" in assert_error(missing, 400, "encrypted_file")["message"]
    wrong = api.post(
        url("import"),
        {"upload_id": upload_id, "passphrase": "wrong"},
        format="json",
    )
    assert_error(wrong, 400, "decryption_failed")
    assert database() == before
    done = api.post(
        url("import"),
        {"upload_id": upload_id, "passphrase": PASSPHRASE},
        format="json",
    )
    assert done.status_code == 200, done.content
    assert counts(tenant)["tco_scenario"] == 1 and stored_uploads() == []


def test_api_upload_encrypted_without_its_passphrase_is_refused(api, tenant) -> None:
    before = database()
    response = api_preview(api, with_passphrase(export_bytes(tenant)))
    assert_error(response, 400, "encrypted_file")
    assert database() == before and stored_uploads() == []
