"""Stored backups in S3: django-storages' S3 storage against a real S3-compatible server (moto's
`moto_server`, started on 127.0.0.1 for these tests), configured by settings alone.

The server takes parts of 6 MiB at least (`S3_UPLOAD_PART_MIN_SIZE`; S3's own minimum is 5 MiB),
so that a client sending 5 MiB parts is refused when it completes the upload: an S3 error after
parts were written, with the server still there to show what was left behind.
"""

import hashlib
import io
import secrets
import signal
import uuid

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from backup.errors import NotRestorable
from backup.models import Restore, StoredBackup
from backup.restore import ImportOptions, Mode
from backup.stored import storage
from backup.stored.backups import request_backup
from backup.stored.restores import confirm_restore, request_restore
from tenants.models import Tenant

from . import factories as f
from .backup_support import export_bytes, parse, populate, tenant_snapshot
from .processes import MotoServer, files_under

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
PART = 6 * MiB
PREFIX = "backups"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log", S3_UPLOAD_PART_MIN_SIZE=str(PART)
    )
    with server:
        yield server


def client(server: MotoServer):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", **KEYS)


def use_s3(settings, server: MotoServer, bucket: str, part: int = PART) -> None:
    """STORAGES["backups"] as config/settings.py makes it when BACKUP_S3_BUCKET is set, and a
    client that gives up at once on a server that is gone (no retries)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "location": PREFIX,
                "endpoint_url": server.url,
                "region_name": "us-east-1",
                "access_key": KEYS["aws_access_key_id"],
                "secret_key": KEYS["aws_secret_access_key"],
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
                "transfer_config": TransferConfig(
                    multipart_threshold=part, multipart_chunksize=part
                ),
                "client_config": Config(
                    retries={"max_attempts": 1, "mode": "standard"},
                    connect_timeout=2,
                    read_timeout=10,
                ),
            },
        },
    }


@pytest.fixture
def bucket(settings, moto, backup_dir):
    """A bucket of the test's own, the backups storage in it (after `backup_dir` set the disk)."""
    name = f"tb-{uuid.uuid4().hex[:12]}"
    client(moto).create_bucket(Bucket=name)
    use_s3(settings, moto, name)
    return name


@pytest.fixture
def tenant():
    tenant = f.TenantFactory()
    populate(tenant)
    return tenant


def bulky(tenant: Tenant, megabytes: int) -> None:
    """Text that does not compress (random base64), so that the stored backup takes
    `megabytes` * 0.75 MB or so."""
    vehicle = f.VehicleFactory(tenant=tenant)
    for _ in range(megabytes):
        f.NotificationFactory(tenant=tenant, vehicle=vehicle, body=secrets.token_urlsafe(786_432))


def data_of(tenant: Tenant) -> dict:
    """The tenant's rows but its audit trail (where failures are recorded)."""
    rows = tenant_snapshot(tenant)
    rows.pop("audit_log")
    return rows


def objects(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def uploads(s3, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def make(tenant: Tenant, run_jobs) -> StoredBackup:
    with run_jobs():
        backup = request_backup(tenant, user=None, trigger="command")
    backup.refresh_from_db()
    return backup


def test_a_stored_backup_lands_in_the_bucket_and_is_restored_from_it(
    moto, bucket, tenant, run_jobs, backup_dir, settings
):
    backup = make(tenant, run_jobs)
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    s3 = client(moto)
    key = f"{PREFIX}/{tenant.pk}/{backup.id}{storage.SUFFIX}"
    assert backup.storage_name == f"{tenant.pk}/{backup.id}{storage.SUFFIX}"
    assert objects(s3, bucket) == [key]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(body) == backup.size
    assert hashlib.sha256(body).hexdigest() == backup.sha256
    assert files_under(backup_dir) == []  # not on the disk
    assert files_under(storage.spool_dir()) == []

    options = ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="from-s3")
    with run_jobs():
        restore = request_restore(
            tenant, user=None, trigger="command", options=options, backup=backup
        )
    restore.refresh_from_db()
    assert restore.status == Restore.Status.AWAITING_CONFIRMATION, restore.error
    with run_jobs():
        confirm_restore(restore, user=None)
    restore.refresh_from_db()
    assert restore.status == Restore.Status.SUCCEEDED, restore.error
    copy = Tenant.objects.get(slug="from-s3")
    assert parse(export_bytes(copy))["statistics"] == parse(export_bytes(tenant))["statistics"]


def test_a_backup_bigger_than_one_part_is_uploaded_in_parts(moto, bucket, tenant, run_jobs):
    bulky(tenant, 11)
    backup = make(tenant, run_jobs)
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    assert PART < backup.size < 2 * PART
    s3 = client(moto)
    key = f"{PREFIX}/{tenant.pk}/{backup.id}{storage.SUFFIX}"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    with storage.open_stored(backup.storage_name) as stored:
        body = stored.read()
    assert hashlib.sha256(body).hexdigest() == backup.sha256
    assert uploads(s3, bucket) == []


def test_an_s3_error_after_parts_were_written_fails_the_backup_and_leaves_nothing(
    settings, moto, bucket, tenant, run_jobs
):
    use_s3(settings, moto, bucket, part=5 * MiB)  # parts the server refuses to assemble
    bulky(tenant, 11)
    before = data_of(tenant)
    backup = make(tenant, run_jobs)
    assert backup.status == StoredBackup.Status.FAILED
    name = f"{tenant.pk}/{backup.id}{storage.SUFFIX}"
    assert backup.error.startswith(f"The backup storage refused the file {name}: ")
    assert "EntityTooSmall" in backup.error
    assert backup.size is None and backup.sha256 == ""
    s3 = client(moto)
    assert objects(s3, bucket) == []
    assert uploads(s3, bucket) == []
    assert files_under(storage.spool_dir()) == []
    assert data_of(tenant) == before
    with pytest.raises(NotRestorable):
        request_restore(
            tenant, user=None, trigger="command", options=ImportOptions(), backup=backup
        )


def test_the_s3_server_stopping_mid_upload_fails_the_backup_with_a_clear_error(
    settings, tmp_path, tenant, run_jobs, backup_dir
):
    server = MotoServer(tmp_path / "moto.log", S3_UPLOAD_PART_MIN_SIZE=str(PART)).start()
    try:
        name = f"tb-{uuid.uuid4().hex[:12]}"
        client(server).create_bucket(Bucket=name)
        use_s3(settings, server, name)
        bulky(tenant, 11)
        before = data_of(tenant)
        # The server goes down once the first part is in: the rest of the upload, its abort and
        # the sweep that follows all find it gone.
        s3 = storage.backup_storage().connection.meta.client
        s3.meta.events.register(
            "after-call.s3.UploadPart", lambda **kwargs: server.kill(signal.SIGKILL)
        )
        backup = make(tenant, run_jobs)
    finally:
        server.stop()
    assert backup.status == StoredBackup.Status.FAILED
    key = f"{tenant.pk}/{backup.id}{storage.SUFFIX}"
    assert backup.error.startswith(f"The backup storage refused the file {key}: ")
    assert "Could not connect to the endpoint URL" in backup.error
    # The parts already sent stay on the server until it comes back and someone aborts them.
    assert "(Its partial file could not be removed yet: " in backup.error
    assert backup.size is None and backup.sha256 == ""
    assert files_under(storage.spool_dir()) == []
    assert files_under(backup_dir) == []
    assert data_of(tenant) == before


def test_sweep_partial_aborts_an_unfinished_multipart_upload_of_the_backup(moto, bucket, tenant):
    backup_id = uuid.uuid4()
    name = storage.storage_name(tenant.pk, backup_id)
    key = f"{PREFIX}/{name}"
    s3 = client(moto)
    # What a worker killed mid-upload leaves: an upload begun, a part in.
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024
    )
    # Another backup's upload is left alone.
    other = f"{PREFIX}/{storage.storage_name(tenant.pk, uuid.uuid4())}"
    s3.create_multipart_upload(Bucket=bucket, Key=other)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{tenant.pk}/kept.json.zst", Body=io.BytesIO(b"k"))
    assert sorted(uploads(s3, bucket)) == sorted([key, other])

    storage.sweep_partial(backup_id, name)

    assert uploads(s3, bucket) == [other]
    assert objects(s3, bucket) == [f"{PREFIX}/{tenant.pk}/kept.json.zst"]
