"""Master data in a backup: resolved to this database's rows by natural key, never changed.

Master data is shared by every tenant, so an import only ever reads it, or (when asked) creates the
rows that are missing. The section is small (only the rows the tenant references), so it is kept in
memory while the tenant rows that point at it are read.
"""

from collections.abc import Iterator
from typing import Any

from django.conf import settings

from backup.errors import InvalidFile
from backup.format.values import decoder
from backup.registry import Registry, TableSpec
from backup.restore.report import ProblemLog, row_label


class MasterData:
    def __init__(self, reg: Registry, problems: ProblemLog) -> None:
        self.reg = reg
        self.problems = problems
        self.rows: dict[str, dict[int, dict[str, Any]]] = {t.name: {} for t in reg.master_tables}
        # file id -> id in this database (None when missing)
        self.local: dict[str, dict[int, int | None]] = {t.name: {} for t in reg.master_tables}
        self.created: dict[str, int] = {}
        self.missing: dict[str, int] = {}
        # Held in memory: a crafted file must not make that grow without bound.
        self.row_limit = int(getattr(settings, "BACKUP_MAX_MASTER_ROWS", 100_000))
        self.count = 0

    def read(self, table: str, rows: Iterator[tuple[int, Any]]) -> None:
        spec = self.reg.master_table(table)
        if spec is None:
            self.problems.add(table, "", "", "unknown master-data table")
            return
        decoders = {f.name: (f, decoder(f)) for f in spec.fields}
        for position, raw in rows:
            self.count += 1
            if self.count > self.row_limit:
                raise InvalidFile(
                    f"The file has more than {self.row_limit:,} rows of master data "
                    f"(BACKUP_MAX_MASTER_ROWS), in master_data.{table}: a backup holds only "
                    "the catalogue rows its tenant references."
                )
            if not isinstance(raw, dict):
                self.problems.add(table, row_label(position), "", "a row must be a JSON object")
                continue
            row: dict[str, Any] = {}
            ok = True
            for name, value in raw.items():
                if name not in decoders:
                    self.problems.add(table, row_label(position), name, "unknown field")
                    ok = False
                    continue
                f, decode = decoders[name]
                if value is None:
                    if not f.null:
                        self.problems.add(table, row_label(position), name, "must not be null")
                        ok = False
                    row[name] = None
                    continue
                try:
                    row[name] = decode(value)
                except ValueError as exc:
                    self.problems.add(table, row_label(position), name, str(exc))
                    ok = False
            for f, _decode in decoders.values():
                if f.required and f.name not in raw:
                    self.problems.add(table, row_label(position), f.name, "required field missing")
                    ok = False
            if ok and row["id"] in self.rows[table]:
                self.problems.add(table, row_label(position), "id", f"id {row['id']} appears twice")
            elif ok:
                self.rows[table][row["id"]] = row

    def describe(self, spec: TableSpec, row: dict[str, Any]) -> str:
        """The natural key as a person reads it: "'Caterpillar' '793F'"."""
        parts = []
        for path in spec.natural_key:
            current_spec, current = spec, row
            *hops, last = path.split("__")
            for hop in hops:
                f = current_spec.field_map[hop]
                current_spec = self.reg.table(f.target)
                current = self.rows[current_spec.name].get(current.get(hop), {})
            parts.append(repr(current.get(last)))
        return " ".join(parts)

    def resolve(self, create_missing: bool) -> None:
        """Find every master row of the file in this database; create the missing ones if asked."""
        for spec in self.reg.master_tables:
            model = spec.model
            missing: list[tuple[int, dict[str, Any]]] = []
            for file_id, row in self.rows[spec.name].items():
                lookup: dict[str, Any] = {}
                for path in spec.natural_key:
                    head = path.split("__")[0]
                    f = spec.field_map[head]
                    if f.kind == "master_fk":
                        lookup[f.column] = self.local[f.target].get(row.get(head))
                    else:
                        lookup[head] = row.get(head)
                found = (
                    model.objects.filter(**lookup).values_list("pk", flat=True).first()
                    if None not in lookup.values()
                    else None
                )
                self.local[spec.name][file_id] = found
                if found is None:
                    missing.append((file_id, row))
            if not missing:
                continue
            if not create_missing:
                self.missing[spec.name] = len(missing)
                for _file_id, row in missing:
                    self.problems.add(
                        spec.name,
                        self.describe(spec, row),
                        "",
                        f"{model._meta.verbose_name} {self.describe(spec, row)} does not exist in "
                        "this database (create it, or import with --create-missing-master-data)",
                    )
                continue
            objects, creatable = [], []
            for file_id, row in missing:
                values = self._values(spec, row)
                if values is not None:
                    objects.append(model(**values))
                    creatable.append(file_id)
            created = model.objects.bulk_create(objects)
            for file_id, obj in zip(creatable, created, strict=True):
                self.local[spec.name][file_id] = obj.pk
            self.created[spec.name] = len(created)

    def _values(self, spec: TableSpec, row: dict[str, Any]) -> dict[str, Any] | None:
        """The column values of a master row to create, or None (a problem) when it refers to
        a row that is neither in the file's master data nor found here."""
        values = {}
        for f in spec.fields:
            if f.kind == "id" or f.name not in row:
                continue
            value = row[f.name]
            if f.kind == "master_fk" and value is not None:
                value = self.local[f.target].get(value)
                if value is None:
                    self.problems.add(
                        spec.name,
                        self.describe(spec, row),
                        f.name,
                        f"refers to {f.target} {row[f.name]}, which is not in master_data",
                    )
                    return None
            values[f.column] = value
        return values

    def summary(self) -> dict[str, dict[str, int]]:
        return {
            name: {
                "in_file": len(rows),
                "missing": self.missing.get(name, 0),
                "create": self.created.get(name, 0),
            }
            for name, rows in self.rows.items()
        }
