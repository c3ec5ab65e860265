import hashlib
import shutil
import sys
import tempfile
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError, StorageFailed
from backup.format.streams import open_output
from backup.models import StoredBackup
from backup.statistics import find_tenant
from backup.stored.backups import get_backup, open_for_operator

CHUNK = 1 << 20


class Command(BaseCommand):
    help = (
        "Copy a stored backup's file, as stored (zstd-compressed JSON, which import_tenant "
        "reads as it is), to FILE or to stdout ('-'). Its SHA-256 is checked against the one "
        "recorded when it was made: a file that differs is not delivered. The download is "
        "audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug or id")
        parser.add_argument("backup_id", help="the backup's id (backup_list shows them)")
        parser.add_argument(
            "-o", "--output", required=True, help="file to write (.json.zst); '-' is stdout"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        try:
            tenant = find_tenant(options["tenant"])
            backup = get_backup(tenant, options["backup_id"])
            if output == "-":
                self._to_stdout(backup)
            else:
                with open_output(output, compress=False) as out:  # renamed into place once whole
                    self._copy(backup, out)
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        except OSError as exc:  # no such directory, no permission, disk full...
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}.") from None
        # The summary must not end up inside a file written to stdout.
        report = self.stderr if output == "-" else self.stdout
        where = "stdout" if output == "-" else output
        report.write(
            f"Backup {backup.id} of tenant '{tenant.slug}' ({backup.size:,} bytes, zstd, SHA-256 "
            f"checked) written to {where}."
        )

    def _to_stdout(self, backup: StoredBackup) -> None:
        # Checked before a byte goes out: a pipe cannot take back what it was given.
        with tempfile.TemporaryFile() as spool:
            self._copy(backup, spool)  # type: ignore[arg-type]
            spool.seek(0)
            shutil.copyfileobj(spool, sys.stdout.buffer, CHUNK)
            sys.stdout.buffer.flush()

    def _copy(self, backup: StoredBackup, out: BinaryIO) -> None:
        digest = hashlib.sha256()
        with open_for_operator(backup) as source:
            while True:
                try:
                    chunk = source.read(CHUNK)
                except Exception as exc:  # a disk or an S3 server failing mid-way
                    raise StorageFailed(
                        f"The backup file {backup.storage_name} cannot be read from storage: "
                        f"{exc}. Nothing was written."
                    ) from exc
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != backup.sha256:
            raise StorageFailed(
                f"The file of backup {backup.id} in storage is not the one that was made (SHA-256 "
                f"{digest.hexdigest()}, recorded {backup.sha256}): nothing was written."
            )
