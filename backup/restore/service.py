"""The entry points of an import: `preview_import` (writes nothing) and `import_backup` (merge,
replace, new tenant), each in one transaction, audited.

An import is tried in the order `attempts` lists, fastest first; an attempt that finds anything
wrong is rolled back and the next one runs, the last checking everything, so that the problems
reported are the ones a preview lists. Each pass over the file is an `ImportPass` (`job`).
"""

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from django.db import transaction

from backup.audit import record
from backup.errors import BackupError, InvalidFile, Refused
from backup.format.encryption import Decryption
from backup.format.streams import HashingReader, open_input
from backup.registry import Registry, registry
from backup.restore.attempts import Attempt, Retry, attempts, passes
from backup.restore.job import ImportPass
from backup.restore.options import ImportOptions, Mode
from backup.restore.report import ImportReport
from tenants.models import Tenant

Source = str | Path | BinaryIO
# (table, rows): the rows of tenant data read so far, in the current pass over the file.
Progress = Callable[[str, int], None]


def _process(
    source: Source,
    *,
    tenant: Tenant | None,
    options: ImportOptions,
    actor: Any,
    apply: bool,
    progress: Progress | None = None,
    decryption: Decryption | None = None,
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
    reg = registry()
    try:
        rewindable = apply and options.mode != Mode.MERGE and _rewindable(raw)
        start = raw.tell() if rewindable else 0
        *first, last = passes(attempts(reg, options.mode, apply=apply, rewindable=rewindable))
        for this_pass in first:
            try:
                report = _run_pass(
                    raw, tenant, options, actor, action, apply, this_pass, reg, progress, decryption
                )
                break
            except Retry:
                raw.seek(start)  # the pass was rolled back: the next one reads the file again
        else:
            report = _run_pass(
                raw, tenant, options, actor, action, apply, last, reg, progress, decryption
            )
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


def _run_pass(
    raw: BinaryIO,
    tenant: Tenant | None,
    options: ImportOptions,
    actor: Any,
    action: str,
    apply: bool,
    this_pass: list[Attempt],
    reg: Registry,
    progress: Progress | None,
    decryption: Decryption | None,
) -> ImportReport:
    """One pass over the file in its own transaction (a savepoint inside the caller's); the
    failures that end the import are audited."""
    hashing = HashingReader(raw)
    job = ImportPass(
        options,
        tenant,
        apply,
        attempts=this_pass,
        actor=actor,
        reg=reg,
        progress=progress,
        sealed=decryption is not None,  # given a key, the file is encrypted or refused
    )
    with open_input(io.BufferedReader(hashing), decryption=decryption) as stream:  # type: ignore[arg-type]
        try:
            with transaction.atomic():
                report = job.run(stream)
                job.drop_stages()
                if not apply:
                    transaction.set_rollback(True)
        except BackupError as exc:
            job.discard_files()
            hashing.drain()
            _audit_failure(job, tenant, options, action, actor, exc, hashing)
            raise
        except BaseException:
            job.discard_files()
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
    job: ImportPass,
    tenant: Tenant | None,
    options: ImportOptions,
    action: str,
    actor: Any,
    exc: BackupError,
    hashing: HashingReader,
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
    progress: Progress | None = None,
    decryption: Decryption | None = None,
) -> ImportReport:
    """What an import would do, per table; writes nothing but its audit entry.

    Raises `ValidationFailed` (with every problem), `InvalidFile` or `Refused`."""
    return _process(
        source,
        tenant=tenant,
        options=options or ImportOptions(),
        actor=actor,
        apply=False,
        progress=progress,
        decryption=decryption,
    )


def import_backup(
    source: Source,
    *,
    tenant: Tenant | None = None,
    options: ImportOptions | None = None,
    actor: Any = None,
    progress: Progress | None = None,
    decryption: Decryption | None = None,
) -> ImportReport:
    """Import the backup in one transaction: all of it, or nothing when anything is wrong."""
    return _process(
        source,
        tenant=tenant,
        options=options or ImportOptions(),
        actor=actor,
        apply=True,
        progress=progress,
        decryption=decryption,
    )
