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


class ValidationFailed(BackupError):
    """The document was read, but rows in it are wrong; `problems` lists them all."""

    code = "validation_failed"
    exit_code = 4

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        self.problems = problems
        self.more = more
        extra = f" (and {more} more)" if more else ""
        super().__init__(f"The backup has {len(problems)} problem(s){extra}.")


class ExportFailed(BackupError):
    """Something in the tenant's data cannot be written to a backup file."""

    code = "export_failed"
    exit_code = 1


class Refused(BackupError):
    """The operation is not allowed: wrong tenant, no confirmation, import already running."""

    code = "refused"
    exit_code = 5


class UnsupportedVersion(InvalidFile):
    code = "unsupported_version"


class ImportRunning(Refused):
    """Another import of the same tenant holds its lock."""

    code = "import_running"


class ConfirmationRequired(Refused):
    """A replace import needs the tenant's name typed as confirmation."""

    code = "confirmation_required"


class UploadNotFound(BackupError):
    """An uploaded backup waiting for its import is unknown, someone else's or expired."""

    code = "upload_not_found"
