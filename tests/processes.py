"""Real processes for the tests of background work: a throwaway database that other processes
can open, `manage.py` commands run against it, workers (django-tasks-db's `db_worker`, RQ's
`rqworker`) and a local S3-compatible server (moto's `moto_server`).

The test database of pytest is not visible to another process (in-memory on SQLite, inside a
transaction on PostgreSQL), so a test of a real worker makes a database of its own, of the same
vendor as the test run's: a file on SQLite, a fresh database on PostgreSQL.
"""

import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for[T](
    probe: Callable[[], T], *, timeout: float, what: str, every: float = 0.05, process: Any = None
) -> T:
    """Call `probe` until it returns something true; fail naming `what` (and the end of the log
    of the process it waits for) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n--- {process.name} ---\n{process.tail()}" if process else ""
            raise AssertionError(f"Waited {timeout:.0f} s for {what}.{tail}")
        time.sleep(every)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


class Database:
    """A database of its own for processes started by a test: `url` for their DATABASE_URL,
    `query` to look at it from the test (plain SQL, `%s` placeholders on both vendors)."""

    def __init__(self, vendor: str, url: str, *, path: Path | None = None, name: str = "") -> None:
        self.vendor = vendor
        self.url = url
        self.path = path
        self.name = name
        self._connection: Any = None

    @property
    def postgresql(self) -> bool:
        return self.vendor == "postgresql"

    def key(self, value: Any) -> Any:
        """A UUID as the database stores it (SQLite: 32 hex digits)."""
        value = uuid.UUID(str(value))
        return value if self.postgresql else value.hex

    def moment(self, value: dt.datetime) -> Any:
        """An aware datetime as a query parameter for a datetime column (SQLite: the text
        Django writes, in UTC)."""
        if self.postgresql:
            return value
        return str(value.astimezone(dt.UTC).replace(tzinfo=None))

    def _connect(self) -> Any:
        if self._connection is None:
            if self.postgresql:
                self._connection = psycopg.connect(self.url, autocommit=True)
            else:
                self._connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        return self._connection

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.postgresql:
            sql = sql.replace("%s", "?")
        cursor = self._connect().execute(sql, params)
        try:
            return list(cursor.fetchall()) if cursor.description is not None else []
        finally:
            cursor.close()

    def value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def writing(self, table: str) -> bool:
        """Whether another connection is inside a transaction that has written to `table` (a
        PostgreSQL row-exclusive lock on it) or, on SQLite, holds the database's write lock."""
        if self.postgresql:
            return bool(
                self.value(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.granted "
                    "AND l.pid <> pg_backend_pid()",
                    (table,),
                )
            )
        probe = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return True
            raise
        finally:
            if probe.in_transaction:
                probe.execute("ROLLBACK")
            probe.close()
        return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# The PostgreSQL server CI always runs; a test that needs PostgreSQL whatever the test run's
# vendor makes its database there when the run itself is on SQLite.
LOCAL_POSTGRESQL = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}


def _server_params() -> dict[str, Any]:
    """How to reach the PostgreSQL server of the test run (its maintenance database), or the
    local one when the test run is on another vendor."""
    if connection.vendor != "postgresql":
        return {"dbname": "postgres", **LOCAL_POSTGRESQL}
    db = settings.DATABASES["default"]
    params = {"dbname": "postgres", "user": db.get("USER") or "postgres"}
    for name, key in (("host", "HOST"), ("port", "PORT"), ("password", "PASSWORD")):
        if db.get(key):
            params[name] = str(db[key])
    return params


def _server_url(name: str) -> str:
    params = _server_params()
    auth = params["user"] + (f":{params['password']}" if "password" in params else "")
    host = params.get("host", "127.0.0.1")
    return f"postgres://{auth}@{host}:{params.get('port', 5432)}/{name}"


def _admin(sql: str) -> None:
    with psycopg.connect(**_server_params(), autocommit=True) as admin:
        admin.execute(sql)


def new_database(
    directory: Path, *, template: Database | None = None, vendor: str | None = None
) -> Database:
    """A database of `vendor` ("sqlite" or "postgresql"; by default the template's, else the
    test run's), empty or a copy of `template` (of the same vendor)."""
    vendor = vendor or (template.vendor if template is not None else connection.vendor)
    if template is not None and template.vendor != vendor:
        raise ValueError(f"A {vendor} database cannot copy a {template.vendor} template.")
    if vendor == "postgresql":
        name = f"tb_proc_{uuid.uuid4().hex[:16]}"
        copy = f" TEMPLATE {template.name}" if template is not None else ""
        _admin(f"CREATE DATABASE {name}{copy}")
        return Database("postgresql", _server_url(name), name=name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex[:12]}.sqlite3"
    if template is not None:
        source = sqlite3.connect(template.path)
        target = sqlite3.connect(path)
        with contextlib.closing(source), contextlib.closing(target):
            source.backup(target)
    return Database("sqlite", f"sqlite:///{path}", path=path)


def drop_database(db: Database) -> None:
    db.close()
    if db.postgresql:
        # FORCE: the session of a worker killed mid-transaction may not be gone yet.
        _admin(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
    elif db.path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db.path}{suffix}").unlink(missing_ok=True)


def environment(db: Database, directory: Path, **extra: Any) -> dict[str, str]:
    """The environment of a process working on `db`: its own storage and spool directories,
    the django-tasks-db backend, a heartbeat a test need not wait long for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "REDIS_"))}
    env.update(
        DATABASE_URL=db.url,
        BACKUP_STORAGE_DIR=str(directory / "backups"),
        BACKUP_SPOOL_DIR=str(directory / "spool"),
        BACKUP_UPLOAD_DIR=str(directory / "uploads"),
        BACKUP_TASK_BACKEND="db",
        BACKUP_JOB_HEARTBEAT_SECONDS="0.1",
        PYTHONUNBUFFERED="1",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def command(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `manage.py args` to its end, whatever its exit status."""
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `manage.py args` to its end; its output, or an error with what it printed."""
    done = command(env, *args, timeout=timeout)
    if done.returncode:
        raise AssertionError(
            f"manage.py {args[0]} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


RESULT = "RESULT:"


def shell(env: dict[str, str], code: str, timeout: float = 120) -> Any:
    """Run Python in `manage.py shell` against the database of `env`; the code sets `result`,
    returned here (through JSON)."""
    script = f"{code}\nprint({RESULT!r} + __import__('json').dumps(result, default=str))"
    out = manage(env, "shell", "--no-imports", "-v", "0", "-c", script, timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith(RESULT)]
    return json.loads(lines[-1][len(RESULT) :])


# The process runs as from a terminal, where Ctrl-C (SIGINT) interrupts it, even when the tests
# run where SIGINT is ignored (a shell without job control starts background jobs so, and the
# ignoring passes on to every child): the disposition is reset before the process starts.
WITH_CTRL_C = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


class Process:
    """A long-running process (a worker, a server) with its output in a log file; stopped (and
    killed if it will not stop) when the `with` block ends."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> "Process":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-c", WITH_CTRL_C, *self.args],
                env=self.env,
                cwd=BASE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout:.0f} s.\n{self.tail()}"
            ) from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` and reap the process (a killed process must not linger as a zombie)."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        self.popen.wait(30)

    def stop(self, timeout: float = 15) -> None:
        if not self.running():
            return
        assert self.popen is not None
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> "Process":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def db_worker(env: dict[str, str], log: Path, *extra: str) -> Process:
    """django-tasks-db's worker: the worker process runs the task itself (no reloader)."""
    args = [sys.executable, str(BASE_DIR / "manage.py"), "db_worker", "--no-reload"]
    args += ["--no-startup-delay", "--interval", "0.1", *extra]
    return Process("db_worker", args, env, log)


def rq_worker(env: dict[str, str], log: Path, *extra: str) -> Process:
    args = [sys.executable, str(BASE_DIR / "manage.py"), "rqworker"]
    args += ["--job-class", "django_tasks_rq.Job", *extra, "default"]
    return Process("rqworker", args, env, log)


@contextlib.contextmanager
def redis_database(host: str = "127.0.0.1", port: int = 6379) -> Iterator[str]:
    """A Redis database number nobody else uses (claimed by a key set only when the database
    is empty), flushed when done: its REDIS_URL."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=host, port=port, db=number)
        if client.dbsize() == 0 and client.set("tb-tests:claimed", os.getpid(), nx=True):
            break
        client.close()
    else:
        raise AssertionError(f"No empty Redis database on {host}:{port} to run the test in.")
    try:
        yield f"redis://{host}:{port}/{number}"
    finally:
        client.flushdb()
        client.close()


class MotoServer(Process):
    """moto's S3-compatible server on 127.0.0.1, its state in its own memory."""

    def __init__(self, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        super().__init__("moto_server", args, {**os.environ, **env}, log)

    def start(self) -> "MotoServer":
        super().start()
        wait_for(self._answers, timeout=30, what=f"moto_server at {self.url}", process=self)
        return self

    def _answers(self) -> bool:
        if not self.running():
            raise AssertionError(f"moto_server exited:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                return True
        except OSError:
            return False
