import os
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses database access from a
# thread with a running loop unless told that this is deliberate (the test only uses the ORM to
# set up and check, never concurrently with the browser).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: Any
) -> None:
    """A worker process (`db_worker`) works beside the live server, so it must reach the test
    database: SQLite's test database, in memory by default, would be this process's alone."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        path = Path(tmp_path_factory.mktemp("database")) / "e2e.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(path)
