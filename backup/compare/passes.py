"""A backup read for a comparison: the import's own pass (`ImportPass`), reading, checking and
staging every row as a merge preview does, and matching them (by id, then natural key) to the
other side's rows: the tenant's, or another backup's staged beside it. It writes nothing, sets
no import stamp, and reads none of an archive's files."""

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

from django.db import connection

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.errors import InvalidFile, Refused
from backup.format.archive import ArchiveReader
from backup.registry import Registry
from backup.restore.attempts import Attempt
from backup.restore.job import ImportPass
from backup.restore.options import ImportOptions, Mode
from backup.restore.planner import StagedRows, TenantRows
from backup.restore.report import ImportReport, ProblemLog
from backup.restore.row_layout import row_layout
from backup.restore.staging import StagingTable
from tenants.models import Tenant

from .differences import compare_table
from .report import TableComparison


class _FilesUnchecked:
    """The rows' file names are compared as values; the files are neither read nor written."""

    def noted(self, table: str, rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        return rows

    def check(self, archived: set[str], tenant_id: Any, problems: ProblemLog) -> None:
        return None


class ReadPass(ImportPass):
    """The backup read and staged as a merge would stage it, without planning (the first of two
    backups compared, against which the second is matched). `tenant`: None takes the backup's
    own (it need not exist here)."""

    stage_prefix = "_first_"

    def __init__(
        self, tenant: Tenant | None, *, reg: Registry, sealed: bool, progress: Any = None
    ) -> None:
        super().__init__(
            ImportOptions(mode=Mode.MERGE),
            tenant,
            False,
            attempts=[Attempt.CHECKED],
            reg=reg,
            progress=progress,
            sealed=sealed,
        )

    def _target_tenant(self, source: dict[str, str]) -> Tenant:
        if self.tenant is None:
            try:
                uuid.UUID(source["id"])
            except ValueError:
                raise InvalidFile(f"metadata.tenant.id is {source['id']!r}, not a UUID.") from None
            found = Tenant.objects.filter(pk=source["id"]).first()
            self.tenant = found or Tenant(pk=source["id"], name=source["name"], slug=source["slug"])
        return self.tenant

    def _stamp(self, spec: Any) -> dict[str, Any]:
        return {}  # compared as the file has them

    def _users_tenant(self, tenant: Tenant) -> Any:
        return None  # emails are matched to this server's accounts, any of them

    def _prepare_files(
        self, archive: ArchiveReader | None, tenant: Tenant, source: dict[str, str]
    ) -> Any:
        return _FilesUnchecked()

    def _finish(
        self, report: ImportReport, tid: Any, tenant: Tenant, has_deleted: bool
    ) -> ImportReport:
        planner = self._planner(tid, tenant, True)
        for spec in self.reg.tenant_tables:
            if spec.name in self.stages:
                planner.check_file(spec)
        self._raise_problems(report)
        return report

    def _raise_problems(self, report: ImportReport) -> None:
        if self.problems:
            report.problems = self.problems.items
            report.more_problems = self.problems.total - len(self.problems.items)
            raise self.problems.error()

    def staged_rows(self) -> StagedRows:
        """Its rows, as the other side of a comparison: every table staged (empty when the
        backup has none), and which of them the backup carries."""
        rows = StagedRows(self.stages, set(self.stages))
        for spec in self.reg.tenant_tables:
            if spec.name not in self.stages:
                stage = StagingTable(spec, prefix=self.stage_prefix)
                stage.create()
                self.stages[spec.name] = stage
            # The other backup's rows are looked up here by id, then by natural key.
            stage = self.stages[spec.name]
            stage.index("id", ["id"])
            if spec.natural_key:
                stage.index("key", [spec.field_map[name].column for name in spec.natural_key])
            dialect().analyze(stage.sql_name)
        return rows


class ComparePass(ReadPass):
    """The backup compared with `against` (another backup's rows) or, without, the tenant's.
    `restored`: the tenant was restored from this backup (a restore drill), so its id differs
    from the backup's. `ignored`: fields left out of the comparison."""

    stage_prefix = "_stage_"

    def __init__(
        self,
        tenant: Tenant | None,
        *,
        reg: Registry,
        sealed: bool,
        limit: int,
        progress: Any = None,
        against: StagedRows | None = None,
        restored: bool = False,
        ignored: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(tenant, reg=reg, sealed=sealed, progress=progress)
        self.limit = limit
        self.against = against
        self.restored = restored
        self.ignored = ignored
        self.tables: dict[str, TableComparison] = {}
        self.not_compared: list[str] = []

    def _target_tenant(self, source: dict[str, str]) -> Tenant:
        tenant = super()._target_tenant(source)
        if source["id"] != str(tenant.pk) and not self.restored:
            whose = "the first backup's" if self.against is not None else f"'{tenant.slug}'"
            raise Refused(
                f"This backup belongs to tenant '{source['name']}' ({source['slug']}, id "
                f"{source['id']}), not to {whose} (id {tenant.pk}): only backups of one tenant "
                "are compared (rows are matched by their ids first)."
            )
        return tenant

    def _finish(
        self, report: ImportReport, tid: Any, tenant: Tenant, has_deleted: bool
    ) -> ImportReport:
        self._check_alike()
        if self.restored:
            self._as_restored()
        existing = self.against or TenantRows(tid)
        planner = self._planner(
            tid,
            tenant,
            # Another backup's references to its soft-deleted rows are its own, kept as they are.
            has_deleted or self.against is not None,
            existing=existing,
            compare=True,
            ignored=self.ignored,
        )
        planned = {
            spec.name: planner.plan(spec)
            for spec in self.reg.tenant_tables
            if spec.name in self.stages
        }
        self._raise_problems(report)
        present = self.against.present if self.against is not None else None
        exported_at = _when(self.metadata.get("exported_at"))
        for spec in self.reg.tenant_tables:
            carried = spec.name in self.stages and (present is None or spec.name in present)
            if spec.optional and not carried:
                self.not_compared.append(spec.name)
                continue
            self.tables[spec.name] = compare_table(
                spec,
                self.stages.get(spec.name),
                planned.get(spec.name),
                existing,
                reg=self.reg,
                limit=self.limit,
                ignored=self.ignored,
                alive_only=not has_deleted,
                exported_at=exported_at,
            )
        return report

    def _as_restored(self) -> None:
        """The staged rows as a new-tenant restore writes them: each secret the file says was
        set is flagged for re-entry (`writes._insert`), the secret itself never in the file."""
        for name, stage in self.stages.items():
            spec = self.reg.table(name)
            for secret in row_layout(spec).secrets:
                flag = q(spec.field_map[secret.flag].column)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {stage.sql_name} SET {flag} = ({flag} OR {q(secret.present)})"
                    )

    def _check_alike(self) -> None:
        """Two backups compare column by column: both carry the secrets, or neither does."""
        if self.against is None:
            return
        for name, stage in self.stages.items():
            if stage.columns != self.against.stages[name].columns:
                raise Refused(
                    "One backup carries the tenant's secrets and the other does not: compare "
                    "two backups made the same way."
                )


def _when(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
