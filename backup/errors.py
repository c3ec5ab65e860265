"""Every way a backup operation can fail, each with a stable code and an exit status."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a backup file, precise enough to act on."""

    table: str
    row: str  # the row's natural key or its position in the table, e.g. "row 12"
    field: str
    message: str

    def __str__(self) -> str:
        where = " ".join(p for p in (self.table, self.row) if p)
        field = f", field '{self.field}'" if self.field else ""
        return f"{where}{field}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class BackupError(Exception):
    code = "backup_error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidFile(BackupError):
    """The file is not a readable backup document (not JSON, truncated, wrong format...)."""

    code = "invalid_file"
    exit_code = 3


class EncryptedFile(InvalidFile):
    """The file is encrypted, and nothing to decrypt it with was given."""

    code = "encrypted_file"


class NotEncrypted(InvalidFile):
    """A key or passphrase was given for a file that is not encrypted."""

    code = "not_encrypted"


class DecryptionFailed(InvalidFile):
    """The key or passphrase does not open the file, or the file was damaged (age
    authenticates what it decrypts)."""

    code = "decryption_failed"


class WrongKey(DecryptionFailed):
    """The file is whole, but the key or passphrase given is not the one it was encrypted with."""


class InvalidKey(BackupError):
    """An age public key, secret key or passphrase that cannot be used as given."""

    code = "invalid_key"
    exit_code = 2


class ValidationFailed(BackupError):
    """The document was read, but rows in it are wrong; `problems` lists them all."""

    code = "validation_failed"
    exit_code = 4

    def __init__(self, problems: list[Problem], more: int = 0, *, stopped: bool = False) -> None:
        """`stopped`: checking stopped early, so `more` is only a lower bound."""
        self.problems = problems
        self.more = more
        self.stopped = stopped
        if stopped:
            message = (
                f"The backup has at least {len(problems) + more} problems: checking stopped "
                f"there, and the first {len(problems)} are listed."
            )
        else:
            extra = f" (and {more} more)" if more else ""
            message = f"The backup has {len(problems)} problem(s){extra}."
        super().__init__(message)


class ExportFailed(BackupError):
    """Something in the tenant's data cannot be written to a backup file."""

    code = "export_failed"
    exit_code = 1


class Refused(BackupError):
    """The operation is not allowed: wrong tenant, no confirmation, import already running."""

    code = "refused"
    exit_code = 5


class NotPermitted(Refused):
    """The user may not ask for this (any more): privileges are checked when the work runs."""

    code = "permission_denied"


class UnsupportedVersion(InvalidFile):
    code = "unsupported_version"


class ImportRunning(Refused):
    """Another import of the same tenant holds its lock."""

    code = "import_running"


class ConfirmationRequired(Refused):
    """A replace import needs the tenant's name typed as confirmation."""

    code = "confirmation_required"


class UploadTooLarge(Refused):
    """An upload larger than the web entry points accept (`BACKUP_UPLOAD_MAX_BYTES`)."""

    code = "upload_too_large"


class AmbiguousRequest(BackupError):
    """A request that names one thing twice (two files, two modes): which one is meant?"""

    code = "ambiguous_request"


class UploadNotFound(BackupError):
    """An uploaded backup waiting for its import is unknown, someone else's or expired."""

    code = "upload_not_found"


class BackupNotFound(BackupError):
    """A stored backup or a restore that is unknown or another tenant's: both are 'not found',
    so that an id reveals nothing about other tenants."""

    code = "not_found"
    exit_code = 2


class DailyLimitReached(Refused):
    """The tenant made as many backups by hand as `BACKUP_DAILY_LIMIT` allows in a day."""

    code = "daily_limit_reached"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobActive(Refused):
    """The backup or restore is still queued or running: it cannot be deleted or restored yet."""

    code = "job_active"


class NotRestorable(Refused):
    """The stored backup has no file to restore (it failed, or is not finished)."""

    code = "not_restorable"


class LinkRefused(BackupError):
    """A download link that was tampered with, has expired, or was issued to someone else."""

    code = "link_refused"


class PasswordRequired(BackupError):
    """A browser session must confirm the account's password before a download link is issued."""

    code = "password_required"


class InvalidSchedule(BackupError):
    """A schedule or retention setting that cannot be used; `errors` names each field."""

    code = "invalid_schedule"
    exit_code = 2

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ".join(f"{field}: {message}" for field, message in errors.items()))


class StorageFailed(BackupError):
    """The backup storage refused a write or a read (disk full, S3 unreachable...)."""

    code = "storage_failed"
