"""Import of a backup document: preview (writes nothing) and import (merge, replace, new tenant).

One pass over the file: the reader streams it, every row is validated and loaded into a staging
table, then the database resolves references and classifies the rows (`plan`), and only when
nothing is wrong are the tenant tables written, all of it in one transaction. An applied replace
or new-tenant restore first tries loading straight into the tenant tables (`direct_load`) and
falls back to this when anything is wrong.
"""

import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import (
    IntegrityError,
    connection,
    transaction,
)
from django.utils import timezone

from backup.access import refuse_lost_privileges, sees_every_user
from backup.audit import record
from backup.db.dialect import dialect
from backup.db.session import configure_session
from backup.db.sql import q
from backup.errors import (
    BackupError,
    InvalidFile,
    NotPermitted,
    Refused,
    UnsupportedVersion,
)
from backup.format.document import FORMAT_NAME, SCHEMA_VERSION
from backup.format.reader import BackupReader
from backup.format.streams import open_input
from backup.format.upgrades import UpgradeStep, upgrade_chain
from backup.format.values import storable_text
from backup.registry import Registry, TableSpec, registry
from backup.restore.direct_load import DirectLoad, Retry, applies, straight
from backup.restore.master_data import MasterData
from backup.restore.options import ImportOptions, Mode, replaced
from backup.restore.planner import Planner
from backup.restore.report import ImportReport, ProblemLog, TableCounts
from backup.restore.row_checks import Users, row_stager
from backup.restore.staging import ACTION, CREATE, TARGET, UPDATE, StagingTable
from tenants.models import Tenant

Source = str | Path | BinaryIO


class _HashingReader(io.RawIOBase):
    """Passes bytes through while computing their SHA-256 (of the file as stored)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> str:
        while self.readinto(bytearray(1 << 20)):
            pass
        return self.digest.hexdigest()


def _tenant_dict(tenant: Tenant) -> dict[str, str]:
    return {"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug}


def _lock_tenant(tenant: Tenant) -> None:
    """Serialise imports of one tenant (SQLite already has a single writer)."""
    key = int.from_bytes(uuid.UUID(str(tenant.pk)).bytes[:8], "big", signed=True)
    dialect().lock_tenant(key, tenant.slug)


class _CheckEverything(Exception):
    """Problems were found while some checks were left to the constraints."""


def _check_metadata(metadata: dict[str, Any]) -> list[UpgradeStep]:
    if metadata.get("format") != FORMAT_NAME:
        raise InvalidFile(
            f"This is not a tenant backup: metadata.format is {metadata.get('format')!r}, "
            f"expected {FORMAT_NAME!r}."
        )
    steps = upgrade_chain(metadata.get("format_version"))
    tenant = metadata.get("tenant")
    if not isinstance(tenant, dict) or not isinstance(tenant.get("id"), str):
        raise InvalidFile("metadata.tenant.id is missing: the backup does not say whose it is.")
    # These name a new tenant and go into the audit trail: text a database can store.
    for key in ("id", "name", "slug"):
        value = tenant.get(key, "")
        limit = 36 if key == "id" else Tenant._meta.get_field(key).max_length  # id: a UUID
        try:
            if not isinstance(value, str) or len(value) > limit:
                raise ValueError(f"expected a string of at most {limit} characters")
            storable_text(value)
        except ValueError as exc:
            raise InvalidFile(f"metadata.tenant.{key}: {exc}.") from None
    return steps


def _file_has_deleted(metadata: dict[str, Any]) -> bool:
    options = metadata.get("options")
    return bool(options.get("include_deleted", True)) if isinstance(options, dict) else True


def _check_schema(schema: dict[str, Any]) -> None:
    version = schema.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidFile(f"schema.version must be an integer, got {version!r}.")
    if version > SCHEMA_VERSION:
        raise UnsupportedVersion(
            f"This backup has schema version {version}, newer than the {SCHEMA_VERSION} of this "
            "application: upgrade the application to import it."
        )


class _Import:
    def __init__(
        self,
        options: ImportOptions,
        tenant: Tenant | None,
        apply: bool,
        *,
        actor: Any = None,
        optimistic: bool = True,
        rewindable: bool = False,
    ) -> None:
        """`optimistic`: an applied replace or new tenant first trusts the file, and checks
        everything only when that was wrong. A replace leaves some checks to the constraints
        and, when the source can be read again (`rewindable`), both load straight into the
        tenant tables; that raises `Retry` or `IntegrityError` when anything is wrong, and the
        caller imports again, not optimistic."""
        self.options = options
        self.mode = options.mode
        self.tenant = tenant
        self.apply = apply
        self.actor = actor
        self.id = uuid.uuid4()  # named in the stamp of rows it creates and in its audit entry
        self.started = timezone.now()
        self.optimistic = optimistic
        self.rewindable = rewindable
        self.reg: Registry = registry()
        self.problems = ProblemLog(int(getattr(settings, "BACKUP_PROBLEM_LIMIT", 200)))
        self.stages: dict[str, StagingTable] = {}
        self.direct: DirectLoad | None = None

    def run(self, stream: BinaryIO) -> ImportReport:
        try:
            return self._run(stream)
        finally:
            if self.direct:
                self.direct.abort()  # stops a load still under way, before the rollback

    def _run(self, stream: BinaryIO) -> ImportReport:
        # As the actor's rights stand now, not as they stood at the preview.
        refuse_lost_privileges(
            self.actor, create_missing_master_data=self.options.create_missing_master_data
        )
        configure_session()
        reader = BackupReader(stream, max_bytes=self.options.max_bytes)
        metadata = reader.object_section("metadata")
        steps = _check_metadata(metadata)
        for step in steps:
            metadata = step.metadata(metadata)
        source = {k: str(metadata["tenant"].get(k, "")) for k in ("id", "name", "slug")}
        tenant = self._target_tenant(source)
        if self.apply and self.mode != Mode.NEW_TENANT:
            _lock_tenant(tenant)
        report = ImportReport(
            mode=self.mode, tenant=_tenant_dict(tenant), source_tenant=source, import_id=self.id
        )
        _check_schema(reader.object_section("schema"))

        masters = MasterData(self.reg, self.problems)
        for table, rows in reader.table_section("master_data"):
            masters.read(table, self._upgraded(steps, "master_data", table, rows))
        masters.resolve(self.options.create_missing_master_data)
        report.master_data = masters.summary()

        tid = Tenant._meta.pk.get_db_prep_value(tenant.pk, connection)
        if self.optimistic and self.rewindable and applies(self.reg, self.mode, self.apply):
            if self.problems:
                raise Retry
            self.direct = DirectLoad(self.reg, self.mode, tid, self.problems)
            self.direct.start()
        users = Users(self._users_tenant(tenant))
        for table, rows in reader.table_section("tenant_data"):
            self._read(table, self._upgraded(steps, "tenant_data", table, rows), masters, users)
            if self.direct and self.problems:
                raise Retry
        statistics = reader.object_section("statistics")
        reader.finish()
        self._check_statistics(statistics)

        has_deleted = _file_has_deleted(metadata)
        if self.direct:
            if self.problems:
                raise Retry
            self.direct.check()
            # Left to stage: the tables a replace merges.
            return self._apply(report, tid, tenant, has_deleted, rely=False, wrong=Retry)
        if self.apply and self.mode == Mode.REPLACE and self.optimistic and not self.problems:
            # What the tables' unique constraints refuse on write anyway (an id twice, another
            # tenant's id, a natural key twice) is left to them; a replace of 1.7 million rows
            # spent about 3 s of its 41 s on those checks. When anything is wrong, everything is
            # checked again from the savepoint, so the problems are the ones a preview lists.
            try:
                with transaction.atomic():
                    return self._apply(
                        report, tid, tenant, has_deleted, rely=True, wrong=_CheckEverything
                    )
            except (IntegrityError, _CheckEverything):
                self.problems.clear()
        report.tables = self._plan(tid, tenant, has_deleted, rely_on_constraints=False)
        report.problems = self.problems.items
        report.more_problems = self.problems.total - len(self.problems.items)
        if self.problems:
            raise self.problems.error()
        if self.apply:
            self._write(tid)
            report.applied = True
        return report

    def _apply(
        self,
        report: ImportReport,
        tid: Any,
        tenant: Tenant,
        has_deleted: bool,
        *,
        rely: bool,
        wrong: type[Exception],
    ) -> ImportReport:
        """Plan (`rely`: on the constraints) and write, trusting the file: `wrong` is raised when
        planning finds problems."""
        report.tables = self._plan(tid, tenant, has_deleted, rely_on_constraints=rely)
        if self.problems:
            raise wrong
        self._write(tid)
        report.applied = True
        return report

    def _plan(
        self, tid: Any, tenant: Tenant, has_deleted: bool, *, rely_on_constraints: bool
    ) -> dict[str, TableCounts]:
        planner = Planner(
            mode=self.mode,
            tenant_db_id=tid,
            tenant_slug=tenant.slug,
            stages=self.stages,
            problems=self.problems,
            file_has_deleted=has_deleted,
            rely_on_constraints=rely_on_constraints,
        )
        tables = {}
        for spec in self.reg.tenant_tables:
            if spec.name in self.stages:
                tables[spec.name] = planner.plan(spec)
            elif self.direct and spec.name in self.direct.rows:
                loaded = self.direct.rows[spec.name]
                tables[spec.name] = TableCounts(in_file=loaded, create=loaded)
            else:
                tables[spec.name] = TableCounts()
            if self.direct and spec.name in self.direct.deleted:
                tables[spec.name].delete = self.direct.deleted[spec.name]
            elif replaced(self.mode, spec):
                tables[spec.name].delete = spec.model.objects.filter(tenant=tenant).count()
        return tables

    @staticmethod
    def _upgraded(
        steps: list[UpgradeStep], section: str, table: str, rows: Iterator[tuple[int, Any]]
    ) -> Iterator[tuple[int, Any]]:
        if not steps:
            return rows

        def upgraded() -> Iterator[tuple[int, Any]]:
            for position, row in rows:
                name = table
                for step in steps:
                    name, row = step.row(section, name, row)
                yield position, row

        return upgraded()

    def _users_tenant(self, tenant: Tenant) -> Any:
        """Whose members the file's emails may name: every account for an operator or a
        superuser; for a tenant's owner or admin, the tenant's members (a new tenant's: those of
        the tenant it was restored from, `source_tenant_id`)."""
        if sees_every_user(self.actor):
            return None
        if self.mode != Mode.NEW_TENANT:
            return tenant.pk
        if not self.options.source_tenant_id:
            raise NotPermitted("A restore as a new tenant names the tenant it restores from.")
        return self.options.source_tenant_id

    def _target_tenant(self, source: dict[str, str]) -> Tenant:
        if self.mode == Mode.NEW_TENANT:
            slug = self.options.new_tenant_slug
            if not slug:
                raise Refused("A new tenant needs a slug.")
            wanted = self.options.source_tenant_id
            if wanted and source["id"] != wanted:
                raise Refused(
                    f"This backup belongs to tenant '{source['name']}' ({source['slug']}, id "
                    f"{source['id']}): only a backup of this tenant (id {wanted}) can be restored "
                    "as a new tenant here."
                )
            if Tenant.slug_taken(slug):
                raise Refused(
                    f"A tenant with slug '{slug}' already exists (slugs are compared without "
                    "regard to case): choose another slug."
                )
            return Tenant.objects.create(
                slug=slug, name=self.options.new_tenant_name or source["name"] or slug
            )
        assert self.tenant is not None
        if source["id"] != str(self.tenant.pk):
            raise Refused(
                f"This backup belongs to tenant '{source['name']}' ({source['slug']}, id "
                f"{source['id']}), not to '{self.tenant.name}' ({self.tenant.slug}, id "
                f"{self.tenant.pk}): a backup is only imported into the tenant it came from "
                "(restore it as a new tenant instead)."
            )
        return self.tenant

    def _read(
        self, table: str, rows: Iterator[tuple[int, Any]], masters: MasterData, users: Users
    ) -> None:
        """A table of tenant_data, loaded into its staging table or (`direct`) its own."""
        try:
            spec = self.reg.table(table)
        except KeyError:
            spec = None
        if spec is None or spec not in self.reg.tenant_tables:
            self.problems.add(table, "", "", "unknown table")
            return
        if table in self._rows_read():
            self.problems.add(table, "", "", "the table appears twice in tenant_data")
            return
        stage_row = row_stager(spec, self.mode, masters, users, self.problems, self._stamp(spec))
        staged = (stage_row(position, raw) for position, raw in rows)
        # Users are looked up by email while rows are read: those tables load in batches.
        streaming = not spec.fields_of_kind("user_fk")
        if self.direct and straight(self.mode, spec):
            self.direct.load(spec, staged, streaming=streaming)
            return
        if self.direct:
            self.direct.settle()
        stage = StagingTable(spec, fresh_ids=self.mode == Mode.NEW_TENANT)
        stage.create()
        self.stages[table] = stage
        stage.load(staged, streaming=streaming)
        stage.analyze(index=self.reg.is_referenced(spec.name))

    def _stamp(self, spec: TableSpec) -> dict[str, Any]:
        """The values this import writes into the stamp fields of the table's new rows."""
        if spec.stamp is None:
            return {}
        by = getattr(self.actor, "email", "") if self.actor is not None else ""
        return {spec.stamp.at: self.started, spec.stamp.by: by, spec.stamp.import_id: self.id}

    def _rows_read(self) -> dict[str, int]:
        read = {table: stage.rows for table, stage in self.stages.items()}
        return read | self.direct.rows if self.direct else read

    def _check_statistics(self, statistics: dict[str, Any]) -> None:
        read = self._rows_read()
        for table, rows in read.items():
            expected = statistics.get(table)
            if expected != rows:
                self.problems.add(
                    table,
                    "",
                    "",
                    f"statistics say {expected} rows, the file has {rows}: the file is "
                    "incomplete or was edited",
                )
        for table in statistics.keys() - read.keys():
            if statistics[table]:
                self.problems.add(
                    table, "", "", f"statistics say {statistics[table]} rows, the file has none"
                )

    def _write(self, tid: Any) -> None:
        with connection.cursor() as cursor:
            for spec in reversed(self.reg.tenant_tables):
                if replaced(self.mode, spec) and not self.direct:  # a direct load deleted them
                    cursor.execute(
                        f"DELETE FROM {q(spec.db_table)} WHERE {q('tenant_id')} = %s", [tid]
                    )
            for spec in self.reg.tenant_tables:
                stage = self.stages.get(spec.name)
                if stage is None:
                    continue
                self._insert(cursor, spec, stage, tid)
                self._update(cursor, spec, stage)

    def _insert(self, cursor: Any, spec: TableSpec, stage: StagingTable, tid: Any) -> None:
        columns = ["id", "tenant_id"]
        values = [f"s.{q(TARGET)}", "%s"]
        params: list[Any] = [tid]
        joins = []
        flags = {s.flag_field: s for s in spec.secrets}
        for f in spec.fields:
            if f.kind == "id":
                continue
            columns.append(f.column)
            referred = self.stages.get(f.target) if f.kind == "tenant_fk" else None
            if self.mode == Mode.NEW_TENANT and referred is not None:
                # The new id of the row referred to (`Planner._resolve_reference`).
                alias = f"r{len(joins)}"
                joins.append(
                    f" LEFT JOIN {referred.sql_name} {alias} ON {alias}.id = s.{q(f.column)}"
                )
                values.append(f"{alias}.{q(TARGET)}")
            elif f.name in flags:
                # A secret never travels in a file: flag it for re-entry when one was set.
                values.append(f"(s.{q(f.column)} OR s.{q(flags[f.name].present_field)})")
            else:
                values.append(f"s.{q(f.column)}")
        for secret in spec.secrets:
            model_field = spec.model._meta.get_field(secret.field)
            columns.append(model_field.column)
            values.append("%s")
            params.append(model_field.get_db_prep_save(model_field.get_default(), connection))
        cursor.execute(
            f"INSERT INTO {q(spec.db_table)} ({', '.join(q(c) for c in columns)}) "
            f"SELECT {', '.join(values)} FROM {stage.sql_name} s{''.join(joins)} "
            f"WHERE s.{q(ACTION)} = %s",
            [*params, CREATE],
        )

    def _update(self, cursor: Any, spec: TableSpec, stage: StagingTable) -> None:
        columns = [f.column for f in spec.fields if f.kind != "id"]
        if not columns:
            return
        table = q(spec.db_table)
        # Column -> (expression, its parameters); kept secrets are assigned first.
        assignments: dict[str, tuple[str, list[Any]]] = {}
        for secret in spec.secrets:
            # A kept secret goes where the row says: when the file moves it elsewhere (another
            # endpoint, user or service), the secret is cleared and flagged for re-entry. The
            # expressions read the row as it was before this UPDATE.
            moved = " OR ".join(
                dialect().distinct(f"{table}.{q(c)}", f"s.{q(c)}") for c in secret.destination
            )
            if not moved:
                continue
            model_field = spec.model._meta.get_field(secret.field)
            cleared = model_field.get_db_prep_save(model_field.get_default(), connection)
            column, flag = q(model_field.column), spec.field_map[secret.flag_field].column
            assignments[model_field.column] = (
                f"CASE WHEN {moved} THEN %s ELSE {column} END",
                [cleared],
            )
            assignments[flag] = (
                f"CASE WHEN ({moved}) AND {dialect().distinct(f'{table}.{column}', '%s')} THEN %s "
                f"ELSE s.{q(flag)} END",
                [cleared, True],
            )
        for c in columns:
            assignments.setdefault(c, (f"s.{q(c)}", []))
        sets = ", ".join(f"{q(c)} = {sql}" for c, (sql, _params) in assignments.items())
        cursor.execute(
            f"UPDATE {table} SET {sets} FROM {stage.sql_name} s "
            f"WHERE {table}.id = s.{q(TARGET)} AND s.{q(ACTION)} = %s",
            [*(p for _sql, params in assignments.values() for p in params), UPDATE],
        )

    def drop_stages(self) -> None:
        for stage in self.stages.values():
            stage.drop()


def _process(
    source: Source, *, tenant: Tenant | None, options: ImportOptions, actor: Any, apply: bool
) -> ImportReport:
    if options.mode != Mode.NEW_TENANT and tenant is None:
        raise Refused("A merge or replace import needs the tenant to import into.")
    close = None
    if isinstance(source, str | Path):
        try:
            raw: BinaryIO = open(source, "rb")  # noqa: SIM115 - closed below
            close = raw
        except OSError as exc:
            raise InvalidFile(f"Cannot open {source}: {exc.strerror}.") from None
    else:
        raw = source
    action = "backup.import" if apply else "backup.preview"
    try:
        rewindable = apply and options.mode != Mode.MERGE and _rewindable(raw)
        start = raw.tell() if rewindable else 0
        try:
            report = _attempt(raw, tenant, options, actor, action, apply, rewindable=rewindable)
        except (Retry, IntegrityError):
            if not rewindable:
                raise
            # The optimistic attempt found something wrong and was rolled back: every check,
            # from the start of the file, so the problems are the ones a preview lists.
            raw.seek(start)
            report = _attempt(raw, tenant, options, actor, action, apply, optimistic=False)
    finally:
        if close is not None:
            close.close()
    # A previewed new tenant was rolled back: its preview is recorded on the backup's own
    # tenant when that one lives here.
    audit_id = report.tenant["id"] if apply or tenant is None else tenant.pk
    if not apply and tenant is None:
        audit_id = report.source_tenant["id"]
    audit_tenant = Tenant.objects.filter(pk=audit_id).first() if _is_uuid(audit_id) else None
    if audit_tenant is not None:
        record(
            audit_tenant,
            action,
            actor=actor,
            details={
                "mode": str(options.mode),
                "outcome": "applied" if apply else "previewed",
                "sha256": report.sha256,
                "import_id": str(report.import_id),
                "source_tenant": report.source_tenant,
                "target_tenant": report.tenant,
                "totals": report.totals().as_dict(),
                "tables": {n: c.as_dict() for n, c in report.tables.items()},
            },
        )
    return report


def _rewindable(raw: BinaryIO) -> bool:
    try:
        return raw.seekable()
    except (AttributeError, ValueError):
        return False


def _attempt(
    raw: BinaryIO,
    tenant: Tenant | None,
    options: ImportOptions,
    actor: Any,
    action: str,
    apply: bool,
    *,
    optimistic: bool = True,
    rewindable: bool = False,
) -> ImportReport:
    """One pass over the file in its own transaction (a savepoint inside the caller's); the
    failures that end the import are audited."""
    hashing = _HashingReader(raw)
    job = _Import(options, tenant, apply, actor=actor, optimistic=optimistic, rewindable=rewindable)
    with open_input(io.BufferedReader(hashing)) as stream:  # type: ignore[arg-type]
        try:
            with transaction.atomic():
                report = job.run(stream)
                job.drop_stages()
                if not apply:
                    transaction.set_rollback(True)
        except BackupError as exc:
            hashing.drain()
            _audit_failure(job, tenant, options, action, actor, exc, hashing)
            raise
    report.sha256 = hashing.drain()
    return report


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _audit_failure(
    job: _Import,
    tenant: Tenant | None,
    options: ImportOptions,
    action: str,
    actor: Any,
    exc: BackupError,
    hashing: _HashingReader,
) -> None:
    if tenant is None:  # a new tenant that failed no longer exists
        return
    record(
        tenant,
        action,
        actor=actor,
        details={
            "mode": str(options.mode),
            "outcome": "failed",
            "error": exc.code,
            "message": exc.message,
            "problems": job.problems.total,
            "sha256": hashing.digest.hexdigest(),
        },
    )


def preview_import(
    source: Source,
    *,
    tenant: Tenant | None = None,
    options: ImportOptions | None = None,
    actor: Any = None,
) -> ImportReport:
    """What an import would do, per table; writes nothing but its audit entry.

    Raises `ValidationFailed` (with every problem), `InvalidFile` or `Refused`."""
    return _process(
        source, tenant=tenant, options=options or ImportOptions(), actor=actor, apply=False
    )


def import_backup(
    source: Source,
    *,
    tenant: Tenant | None = None,
    options: ImportOptions | None = None,
    actor: Any = None,
) -> ImportReport:
    """Import the backup in one transaction: all of it, or nothing when anything is wrong."""
    return _process(
        source, tenant=tenant, options=options or ImportOptions(), actor=actor, apply=True
    )
