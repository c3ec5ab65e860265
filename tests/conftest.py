import uuid

import pytest
from asgiref.local import Local
from django.core.management import call_command
from django.dispatch import receiver
from django.tasks import task_backends
from django.test.signals import setting_changed

from tenants.models import Tenant
from tests import factories
from tests.backup_support import populate
from tests.broken_backups import TENANT as CORPUS_TENANT


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Attachments and uploads of one test never leak into another or into var/.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    """Backups uploaded for preview go to the test's own directory (the setting_changed
    signal resets Django's cache of storages)."""
    location = tmp_path / "uploads"
    uploads = {**settings.STORAGES["backup_uploads"]}
    uploads["OPTIONS"] = {**uploads["OPTIONS"], "location": str(location)}
    settings.STORAGES = {**settings.STORAGES, "backup_uploads": uploads}
    return location


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    """Stored backups (and the workers' spool files) go to the test's own directories."""
    location = tmp_path / "backups"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": str(location),
                "base_url": None,
                "file_permissions_mode": 0o600,
                "directory_permissions_mode": 0o700,
            },
        },
    }
    settings.BACKUP_SPOOL_DIR = str(tmp_path / "spool")
    return location


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    """Jobs run in the test's own process, when the transaction that enqueued them commits:
    under the `db` fixture only inside `django_capture_on_commit_callbacks(execute=True)`
    (the `run_jobs` fixture). Tests of real workers set TASKS themselves."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@receiver(setting_changed)
def _reset_task_backends(setting: str, **kwargs) -> None:
    # Django resets its caches of storages and databases when a test changes them, not that of
    # task backends.
    if setting == "TASKS":
        task_backends.__dict__.pop("settings", None)
        task_backends._connections = Local(task_backends.thread_critical)


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """`with run_jobs(): ...`: the jobs enqueued inside run (in this process) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def tenant():
    """A tenant with rows in every table (most tests of one tenant use it)."""
    tenant = factories.TenantFactory(slug="north-pit", name="North Pit")
    populate(tenant)
    return tenant


@pytest.fixture
def other():
    """A second, smaller tenant: what must stay untouched by anything done to `tenant`."""
    other = factories.TenantFactory(slug="south-pit", name="South Pit")
    populate(other, vehicles=1)
    return other


@pytest.fixture
def corpus_tenant():
    """The tenant the broken-file corpus (`tests/broken_backups.py`) belongs to, with rows of
    its own, beside a bystander tenant."""
    call_command("loaddata", "fixtures/masterdata.json", verbosity=0)
    tenant = Tenant.objects.create(
        id=uuid.UUID(CORPUS_TENANT["id"]), name=CORPUS_TENANT["name"], slug="corpus"
    )
    site = factories.SiteFactory(tenant=tenant, name="Old Pit")
    factories.MeterReadingFactory(
        tenant=tenant, vehicle=factories.VehicleFactory(tenant=tenant, site=site)
    )
    factories.TenantFactory(slug="bystander")
    return tenant
