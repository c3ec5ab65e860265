"""One pass over a backup file: every row read, checked and loaded, then planned and written.

The rows go into staging tables, where the database checks and classifies them set-based
(`planner`), or, for `Attempt.DIRECT`, straight into the tenant tables (`direct_load`). The
pass runs in its caller's transaction; the caller (`service`) rolls it back when it fails.
"""

import uuid
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backup.access import refuse_lost_privileges, sees_every_user
from backup.db.dialect import dialect
from backup.db.session import configure_session
from backup.errors import InvalidFile, NotPermitted, Refused
from backup.format.archive import ArchiveReader, archive_of
from backup.format.metadata import (
    carries_secrets,
    check_metadata,
    check_schema,
    has_deleted_rows,
)
from backup.format.reader import BackupReader
from backup.format.upgrades import UpgradeStep
from backup.registry import Registry, TableSpec, registry
from backup.restore.attempts import Attempt, Retry
from backup.restore.direct_load import DirectLoad
from backup.restore.files import FileRestore, NamedFiles, listing
from backup.restore.master_data import MasterData
from backup.restore.options import ImportOptions, Mode, replaced, straight
from backup.restore.planner import Planner
from backup.restore.report import ImportReport, ProblemLog, TableCounts
from backup.restore.row_checks import Users, row_stager
from backup.restore.samples import preview_samples
from backup.restore.staging import StagingTable
from backup.restore.writes import write_plan
from tenants.models import Tenant

PROGRESS_EVERY = 5000  # rows between two progress reports


def _tenant_dict(tenant: Tenant) -> dict[str, str]:
    return {"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug}


def _lock_tenant(tenant: Tenant) -> None:
    """Serialise imports of one tenant (SQLite already has a single writer)."""
    key = int.from_bytes(uuid.UUID(str(tenant.pk)).bytes[:8], "big", signed=True)
    dialect().lock_tenant(key, tenant.slug)


def _secrets_notice(spec: TableSpec, count: int) -> str:
    names = spec.model._meta.verbose_name if count == 1 else spec.model._meta.verbose_name_plural
    fields = ", ".join(spec.model.secret_destination_fields or ())
    return (
        f"{count} {names} will lose {'its' if count == 1 else 'their'} secret: the backup changes "
        f"where it is sent ({fields}). Enter it again after the import."
    )


class ImportPass:
    """One pass over the file, in the caller's transaction: read and check every row, load it
    (into a staging table, or straight into its tenant table for `Attempt.DIRECT`), then plan
    and write by the pass's attempts in order."""

    stage_prefix = "_stage_"

    def __init__(
        self,
        options: ImportOptions,
        tenant: Tenant | None,
        apply: bool,
        *,
        attempts: list[Attempt],
        actor: Any = None,
        reg: Registry,
        progress: Callable[[str, int], None] | None = None,
        sealed: bool = False,
    ) -> None:
        """`attempts`: this pass's, in order (`attempts.passes`); each but the last raises
        `Retry` when it finds anything wrong. `progress(table, rows)`: the rows of tenant data
        this pass has read so far, reported every few thousand rows. `sealed`: the file was
        encrypted (only such a file may carry secrets)."""
        self.options = options
        self.mode = options.mode
        self.tenant = tenant
        self.apply = apply
        self.actor = actor
        self.id = uuid.uuid4()  # named in the stamp of rows it creates and in its audit entry
        self.started = timezone.now()
        self.attempts = attempts
        self.reg = reg
        self.problems = ProblemLog(int(getattr(settings, "BACKUP_PROBLEM_LIMIT", 200)))
        self.stages: dict[str, StagingTable] = {}
        self.direct: DirectLoad | None = None
        self.notices: list[str] = []  # what a person should know before the import runs
        self.progress = progress
        self.rows_read = 0
        self.sealed = sealed
        self.files: FileRestore | None = None  # an archive's files
        self.metadata: dict[str, Any] = {}  # the file's, as upgraded

    def run(self, stream: BinaryIO) -> ImportReport:
        try:
            return self._run(stream)
        except IntegrityError:
            # A constraint refused what an attempt trusted; in the full check, a bug.
            if self.attempts[-1] is Attempt.CHECKED:
                raise
            raise Retry from None
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
        steps = check_metadata(metadata)
        for step in steps:
            metadata = step.metadata(metadata)
        self.metadata = metadata
        if carries_secrets(metadata):
            if not self.sealed:
                raise InvalidFile(
                    "This backup carries the tenant's secrets, and it is not encrypted: secrets "
                    "travel only encrypted. Import the encrypted file it came from, with its key "
                    "or passphrase."
                )
            self.reg = registry(with_secrets=True)
        source = {k: str(metadata["tenant"].get(k, "")) for k in ("id", "name", "slug")}
        tenant = self._target_tenant(source)
        if self.apply and self.mode != Mode.NEW_TENANT:
            _lock_tenant(tenant)
        report = ImportReport(
            mode=self.mode, tenant=_tenant_dict(tenant), source_tenant=source, import_id=self.id
        )
        archive = archive_of(stream)
        named = self._prepare_files(archive, tenant, source)
        check_schema(reader.object_section("schema"))

        masters = MasterData(self.reg, self.problems)
        for table, rows in reader.table_section("master_data"):
            masters.read(table, self._upgraded(steps, "master_data", table, rows))
        masters.resolve(self.options.create_missing_master_data)
        report.master_data = masters.summary()

        tid = Tenant._meta.pk.get_db_prep_value(tenant.pk, connection)
        if self.attempts[0] is Attempt.DIRECT:
            if self.problems:
                raise Retry
            self.direct = DirectLoad(self.reg, self.mode, tid, self.problems)
            self.direct.start()
        users = Users(self._users_tenant(tenant))
        for table, rows in reader.table_section("tenant_data"):
            rows = self._counted(table, self._upgraded(steps, "tenant_data", table, rows))
            self._read(table, named.noted(table, rows), masters, users)
            if self.direct and self.problems:
                raise Retry
        listed, statistics = reader.closing_sections()
        reader.finish()
        self._check_statistics(statistics)
        if self.direct:
            self.direct.settle()  # the connection is the direct load's until it settles
        self._check_files(archive, named, listed, report, tid)

        return self._finish(report, tid, tenant, has_deleted_rows(metadata))

    def _prepare_files(
        self, archive: ArchiveReader | None, tenant: Tenant, source: dict[str, str]
    ) -> NamedFiles:
        """What checks the files the rows name and, for an archive, restores its files; made
        now, when the tenant's files are known before its rows change."""
        if self.mode == Mode.NEW_TENANT:  # it may share the files of the tenant it came from
            named = NamedFiles(self.reg, None, source["id"])
        else:
            named = NamedFiles(self.reg, tenant)
        if archive is not None:
            self.files = FileRestore(
                self.reg,
                named.own,
                self.problems,
                write=self.apply and self.options.restore_files,
                max_total=self.options.max_bytes,
            )
        return named

    def _check_files(
        self,
        archive: ArchiveReader | None,
        named: NamedFiles,
        listed: list[Any] | None,
        report: ImportReport,
        tid: Any,
    ) -> None:
        if archive is None or self.files is None:
            named.check(set(), tid, self.problems)
            return
        files = listing(listed or [], self.files.max_total)
        # Files the archive brings are written under names of their own, never over another's.
        named.check(set(files) if self.files.write else set(), tid, self.problems)
        self.files.restore(archive, files)
        report.files = self.files.summary()

    def _finish(
        self, report: ImportReport, tid: Any, tenant: Tenant, has_deleted: bool
    ) -> ImportReport:
        """Plan and write by this pass's attempts in order; the staged ones plan the same
        staging tables, each from a savepoint, while the file's own rows had no problem."""
        if self.direct:
            if self.problems:
                raise Retry
            self.direct.check()
        *trusting, last = self.attempts
        for attempt in trusting:
            if self.problems:
                break  # found while reading: only the full check reports them as a preview does
            try:
                with transaction.atomic():
                    return self._apply(report, tid, tenant, has_deleted, attempt)
            except (Retry, IntegrityError):
                self.problems.clear()  # this attempt's own; the next plans anew
        return self._apply(report, tid, tenant, has_deleted, last)

    def _apply(
        self, report: ImportReport, tid: Any, tenant: Tenant, has_deleted: bool, attempt: Attempt
    ) -> ImportReport:
        """Plan (for `Attempt.CONSTRAINTS`, leaving to the constraints what they check) and,
        for an import, write. Problems end the attempt: `Retry`, or for the full check the
        `ValidationFailed` that lists them."""
        rely = attempt is Attempt.CONSTRAINTS
        report.tables = self._plan(tid, tenant, has_deleted, rely_on_constraints=rely)
        report.notices = list(self.notices)
        if self.problems:
            if attempt is not Attempt.CHECKED:
                raise Retry
            report.problems = self.problems.items
            report.more_problems = self.problems.total - len(self.problems.items)
            raise self.problems.error()
        if not self.apply:
            report.samples = preview_samples(self.reg, self.stages, self.mode, tid)
        if self.apply:
            write_plan(self.reg, self.mode, self.stages, tid, deleted=self.direct is not None)
            if self.files is not None:
                self.files.rename_rows(tid)
            report.applied = True
        return report

    def _plan(
        self, tid: Any, tenant: Tenant, has_deleted: bool, *, rely_on_constraints: bool
    ) -> dict[str, TableCounts]:
        planner = self._planner(tid, tenant, has_deleted, rely_on_constraints=rely_on_constraints)
        tables = {}
        self.notices.clear()
        for spec in self.reg.tenant_tables:
            if spec.name in self.stages:
                tables[spec.name] = planner.plan(spec)
                if spec.secrets and (cleared := planner.secrets_cleared(spec)):
                    self.notices.append(_secrets_notice(spec, cleared))
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

    def _planner(self, tid: Any, tenant: Tenant, has_deleted: bool, **options: Any) -> Planner:
        return Planner(
            reg=self.reg,
            mode=self.mode,
            tenant_db_id=tid,
            tenant_slug=tenant.slug,
            stages=self.stages,
            problems=self.problems,
            file_has_deleted=has_deleted,
            **options,
        )

    def _counted(self, table: str, rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        progress = self.progress
        if progress is None:
            return rows

        def counted() -> Iterator[tuple[int, Any]]:
            for row in rows:
                self.rows_read += 1
                if not self.rows_read % PROGRESS_EVERY:
                    progress(table, self.rows_read)
                yield row
            progress(table, self.rows_read)

        return counted()

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
        spec = self.reg.tenant_table(table)
        if spec is None:
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
        stage = StagingTable(spec, fresh_ids=self.mode == Mode.NEW_TENANT, prefix=self.stage_prefix)
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

    def discard_files(self) -> None:
        """The files this pass wrote, deleted: its rows were rolled back."""
        if self.files is not None:
            self.files.discard()

    def drop_stages(self) -> None:
        """The staging tables are temporary; a pass that succeeds drops them at once."""
        for stage in self.stages.values():
            stage.drop()
