"""The entry points of a comparison: `compare_with_tenant` (a backup against the tenant's data
as it is now) and `compare_backups` (two backups of one tenant). Each runs in a transaction that
is rolled back: the staging tables go with it, and nothing else is written but the audit entry of
a comparison with a tenant."""

import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction

from backup.audit import record
from backup.errors import InvalidFile
from backup.format.encryption import Decryption
from backup.format.streams import HashingReader, open_input
from backup.registry import registry
from backup.restore.job import ImportPass
from tenants.models import Tenant

from .passes import ComparePass, ReadPass
from .report import Comparison

Source = str | Path | BinaryIO
Progress = Callable[[str, int], None]


def sample_rows() -> int:
    """Rows shown of each kind, per table (the counts are always exact)."""
    return int(getattr(settings, "BACKUP_COMPARE_SAMPLE_ROWS", 10))


@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    if not isinstance(source, str | Path):
        yield source
        return
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidFile(f"Cannot open {source}: {exc.strerror}.") from None
    with handle:
        yield handle


def _read(raw: BinaryIO, job: ImportPass, decryption: Decryption | None) -> str:
    """Run the pass over the file; the SHA-256 of the file as stored."""
    hashing = HashingReader(raw)
    with open_input(io.BufferedReader(hashing), decryption=decryption) as stream:  # type: ignore[arg-type]
        job.run(stream)
    return hashing.drain()


def _name(source: Source) -> str:
    return str(source) if isinstance(source, str | Path) else getattr(source, "name", "backup")


def compare_with_tenant(
    source: Source,
    tenant: Tenant,
    *,
    decryption: Decryption | None = None,
    actor: Any = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """The backup against the tenant's current data: old is the tenant, new the backup.

    Raises `InvalidFile` (unreadable), `ValidationFailed` (rows the import would refuse, all
    listed) or `Refused` (a backup of another tenant)."""
    comparison = _with_tenant(source, tenant, decryption, limit, progress)
    record(
        tenant,
        "backup.compare",
        actor=actor,
        details={
            "sha256": comparison.sha256,
            "identical": comparison.identical,
            "totals": comparison.totals().counts(),
            "tables": {
                name: t.counts() for name, t in comparison.tables.items() if not t.identical
            },
        },
    )
    return comparison


def _with_tenant(
    source: Source,
    tenant: Tenant,
    decryption: Decryption | None,
    limit: int | None,
    progress: Progress | None,
    *,
    restored: bool = False,
    ignored: frozenset[str] = frozenset(),
) -> Comparison:
    job = ComparePass(
        tenant,
        reg=registry(),
        sealed=decryption is not None,
        limit=sample_rows() if limit is None else limit,
        progress=progress,
        restored=restored,
        ignored=ignored,
    )
    with _opened(source) as raw, transaction.atomic():
        sha256 = _read(raw, job, decryption)
        transaction.set_rollback(True)
    return Comparison(
        old=f"tenant '{tenant.slug}'",
        new=_name(source),
        tenant={"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug},
        tables=job.tables,
        not_compared=job.not_compared,
        sha256=sha256,
    )


def compare_restored(
    source: Source, tenant: Tenant, *, decryption: Decryption | None = None
) -> Comparison:
    """The backup against the tenant just restored from it, as new (a restore drill, inside
    its transaction): rows are matched by natural key, their ids being new, and the import's
    own stamp on the rows it wrote is left out."""
    stamps = frozenset(
        name
        for spec in registry().tenant_tables
        if spec.stamp is not None
        for name in (spec.stamp.at, spec.stamp.by, spec.stamp.import_id)
    )
    return _with_tenant(
        source, tenant, decryption, sample_rows(), None, restored=True, ignored=stamps
    )


def compare_backups(
    old: Source,
    new: Source,
    *,
    decryption: Decryption | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Two backups of one tenant: the rows of `new` matched to those of `old`. `decryption`
    opens whichever of them is encrypted. Raises as `compare_with_tenant` does."""
    sealed = decryption is not None
    first = ReadPass(None, reg=registry(), sealed=sealed, progress=progress)
    with ExitStack() as stack:
        old_raw = stack.enter_context(_opened(old))
        new_raw = stack.enter_context(_opened(new))
        with transaction.atomic():
            _read(old_raw, first, decryption)
            assert first.tenant is not None
            second = ComparePass(
                first.tenant,
                reg=registry(),
                sealed=sealed,
                limit=sample_rows() if limit is None else limit,
                progress=progress,
                against=first.staged_rows(),
            )
            sha256 = _read(new_raw, second, decryption)
            transaction.set_rollback(True)
    tenant = first.tenant
    return Comparison(
        old=_name(old),
        new=_name(new),
        tenant={"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug},
        tables=second.tables,
        not_compared=second.not_compared,
        sha256=sha256,
    )
