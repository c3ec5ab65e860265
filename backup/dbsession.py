"""Settings of the database session that an export or import runs in."""

from django.conf import settings
from django.db import connection


def raise_work_mem() -> None:
    """Give the current transaction's sorts and hashes `BACKUP_WORK_MEM` (PostgreSQL only).

    An export sorts each table by id and an import groups and joins its staging tables; with
    PostgreSQL's default 4 MB a million rows go to temporary files, which cost a third of an
    export's database time. The setting ends with the transaction."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, true)",
            [getattr(settings, "BACKUP_WORK_MEM", "64MB")],
        )
