"""An import is all or nothing, even when it fails after most of it was written."""

import io

import pytest
from django.db import DatabaseError, connection

from backup.errors import ValidationFailed
from backup.registry import registry
from backup.restore import ImportOptions, Mode, import_backup

from . import factories as f
from .backup_support import dump, export_bytes, parse, populate, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant():
    tenant = f.TenantFactory(slug="north-pit")
    populate(tenant, vehicles=3)
    return tenant


@pytest.fixture
def last_table():
    """The table an import writes last, made to refuse every insert, as a disk or constraint
    failure would late in a real import."""
    spec = registry().tenant_tables[-1]
    table = connection.ops.quote_name(spec.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION late_failure() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'late failure'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER late_failure BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION late_failure()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER late_failure BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'late failure'); END"
            )
    yield spec
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER late_failure ON {table}")
            cursor.execute("DROP FUNCTION late_failure()")
        else:
            cursor.execute("DROP TRIGGER late_failure")


@pytest.mark.parametrize("mode", [Mode.REPLACE, Mode.MERGE])
def test_a_failure_writing_the_last_table_leaves_the_database_as_it_was(tenant, last_table, mode):
    document = parse(export_bytes(tenant))
    rows = document["tenant_data"][last_table.name]
    assert rows, "the last table has rows to write"
    if mode == Mode.MERGE:  # merge then has rows to insert into the last table
        last_table.model.objects.filter(tenant=tenant).delete()
    document_bytes = dump(document)
    before = snapshot()
    with pytest.raises(DatabaseError, match="late failure"):
        import_backup(io.BytesIO(document_bytes), tenant=tenant, options=ImportOptions(mode=mode))
    assert snapshot() == before


def test_a_problem_in_the_last_row_of_the_last_table_writes_nothing(tenant):
    document = parse(export_bytes(tenant))
    name = registry().tenant_tables[-1].name
    if name not in document["tenant_data"]:
        name = list(document["tenant_data"])[-1]
    document["tenant_data"][name][-1]["id"] = "not-a-uuid"
    before = snapshot(audit=False)
    with pytest.raises(ValidationFailed) as failed:
        import_backup(
            io.BytesIO(dump(document)), tenant=tenant, options=ImportOptions(mode=Mode.REPLACE)
        )
    [problem] = failed.value.problems
    assert problem.table == name and problem.field == "id"
    assert problem.row.startswith(f"row {len(document['tenant_data'][name])}")
    assert snapshot(audit=False) == before
