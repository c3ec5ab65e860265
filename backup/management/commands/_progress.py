"""Progress of the backup commands: a tqdm bar on stderr when stderr is a terminal (nothing
otherwise, so that logs and pipes get only the summaries), and waiting for a job's row."""

from collections.abc import Callable
from time import monotonic, sleep
from types import TracebackType
from typing import Any, Self

from django.core.management.base import OutputWrapper
from tqdm import tqdm

from backup.models import Job

# How often a command waiting for a job reads its row again.
POLL_SECONDS = 0.5
# A job no worker has picked up after this long most likely has no worker to go to.
UNCLAIMED_HINT_SECONDS = 15.0


class _PlainStream:
    """The command's stderr as a plain stream: tqdm redraws its line after a carriage return,
    and the wrapper would otherwise end every write with a newline and colour it as an error."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, style_func=lambda s: s, ending="")

    def flush(self) -> None:
        self.wrapper.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding... for tqdm's terminal width
        return getattr(self.wrapper, name)


def _format(total: int | None) -> str:
    """Rows counted in full (tqdm would scale 35 rows to "35.0"); the bar once a total is known."""
    if total:
        return "{desc}: {percentage:3.0f}%|{bar}| {n:,}/{total:,} rows [{elapsed}<{remaining}]"
    return "{desc}: {n:,} rows [{elapsed}]"


class ProgressBar:
    """Rows done of rows expected (when known), with the current table as its label."""

    def __init__(self, stderr: OutputWrapper, *, label: str = "", total: int | None = None) -> None:
        self.stream = _PlainStream(stderr)
        self.bar: tqdm[Any] | None = None
        if stderr.isatty():
            self.bar = tqdm(
                total=total or None,
                desc=label,
                bar_format=_format(total),
                leave=False,
                dynamic_ncols=True,
                file=self.stream,
            )

    def show(self, table: str, done: int, total: int | None = None) -> None:
        """Also takes a count that went back: an import that tries again reads the file anew."""
        if self.bar is None:
            return
        if total and self.bar.total != total:
            self.bar.total = total
            self.bar.bar_format = _format(total)
        self.bar.n = done
        if table:
            self.bar.set_description_str(table, refresh=False)
        self.bar.refresh()

    def rows(self, table: str, done: int) -> None:
        """The `progress` callback of `import_backup` and `preview_import`."""
        self.show(table, done)

    def note(self, message: str) -> None:
        """A line on stderr that the bar does not overwrite."""
        if self.bar is None:
            self.stream.write(message + "\n")
        else:
            self.bar.write(message, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def wait_for[J: Job](
    load: Callable[[], J], *, going: Callable[[J], bool], stderr: OutputWrapper, label: str
) -> J:
    """Read the job's row with `load` (which sweeps away dead workers' jobs) until `going` is
    false; returns the row as it ended."""
    job = load()
    started = monotonic()
    hinted = False
    with ProgressBar(stderr, label=label) as bar:
        while going(job):
            bar.show(job.progress_table or label, job.progress_done, job.progress_total)
            if not hinted and not job.worker and monotonic() - started > UNCLAIMED_HINT_SECONDS:
                bar.note(
                    f"No worker has picked up job {job.pk} after {UNCLAIMED_HINT_SECONDS:.0f} s: "
                    "is one running? (`manage.py db_worker`, or the RQ worker when "
                    "BACKUP_TASK_BACKEND=rq)"
                )
                hinted = True
            sleep(POLL_SECONDS)
            job = load()
    return job
