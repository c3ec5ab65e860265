"""How a table's checked rows become rows of its tenant table, the same for every path.

The staged path writes them with one INSERT ... SELECT from the staging table (`writes`), the
direct load in Python as they are read (`direct_load`). Both take from here which columns the
tenant table gets, what a secret's column and its re-entry flag become (a secret never travels
in a file), and which values are ids that a new tenant replaces.
"""

from dataclasses import dataclass
from typing import Any

from django.db import connection

from backup.registry import TableSpec


@dataclass(frozen=True)
class Secret:
    column: str  # the secret's column in the tenant table
    cleared: Any  # what the column holds without a secret: its default, ready for the database
    flag: str  # the field set when the secret must be entered again
    present: str  # the file's "a secret was set", a column of the staging table too
    destination: tuple[str, ...]  # columns that decide where it goes (`SecretSpec`)


@dataclass(frozen=True)
class RowLayout:
    columns: tuple[str, ...]  # of the tenant table: id, tenant_id, every field's, every secret's
    secrets: tuple[Secret, ...]
    # The fields whose values name rows of the tenant (its id, its references): a new tenant
    # gives them new values.
    ids: tuple[str, ...]


def row_layout(spec: TableSpec) -> RowLayout:
    secrets = []
    for secret in spec.secrets:
        model_field = spec.model._meta.get_field(secret.field)
        cleared = model_field.get_db_prep_save(model_field.get_default(), connection)
        secrets.append(
            Secret(
                column=model_field.column,
                cleared=cleared,
                flag=secret.flag_field,
                present=secret.present_field,
                destination=secret.destination,
            )
        )
    assert spec.fields[0].kind == "id", f"{spec.name}: the id is the first field"
    return RowLayout(
        columns=(
            "id",
            "tenant_id",
            *(f.column for f in spec.fields[1:]),
            *(s.column for s in secrets),
        ),
        secrets=tuple(secrets),
        ids=tuple(f.name for f in spec.fields if f.kind in ("id", "tenant_fk")),
    )
