import pytest


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
