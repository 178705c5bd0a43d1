"""Real Redis, PostgreSQL and callscribe servers for tests: throwaway processes on free
loopback ports.

Each server is a plain object: `start()`, `stop()`, `close()` (stop and delete its files), also
usable as a context manager. Nothing survives the test run: `close()` runs from the pytest
fixtures' finalizers, again at interpreter exit (atexit), and if the test process is killed
outright the kernel sends the servers a signal (Linux parent-death signal).

Missing binaries raise `ServiceUnavailable`, which the fixtures turn into a skip (or a failure in
CI); a server that does not come up raises `ServiceError` with the tail of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

WAIT_S = 20.0
"""How long a server may take to answer after it is started, and to exit after it is stopped."""


class ServiceUnavailable(RuntimeError):
    """The server's binaries are not installed on this machine."""


class ServiceError(RuntimeError):
    """The server did not start, answer or stop in time."""


_live: set[_Server] = set()


@atexit.register
def _close_all() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, however it dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Server:
    """One server process with a private temporary folder (its data and its log)."""

    name = "server"
    wait_s = WAIT_S

    def __init__(self) -> None:
        self.port = free_port()
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self._started = False

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process and wait for it to exit (killed if it takes longer than WAIT_S)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self._stop_signal)
            try:
                process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(WAIT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the process group, as a crash would: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.stop()

    def close(self) -> None:
        """Stop the process and delete the server's files."""
        try:
            self.stop()
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None
            _live.discard(self)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- helpers for subclasses ---------------------------------------------------------------

    _stop_signal = signal.SIGTERM

    def _make_directory(self, owner: int | None = None) -> Path:
        if self.directory is None:
            # Straight under /tmp, not pytest's tmp_path: another user (postgres) must reach it,
            # and a unix socket path must stay under 108 bytes.
            self.directory = Path(tempfile.mkdtemp(prefix=f"callscribe-{self.name}-"))
            if owner is not None:
                os.chown(self.directory, owner, owner_group(owner))
            _live.add(self)
        return self.directory

    def _spawn(
        self, argv: list[str], user: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        assert self.directory is not None
        self._log_file = open(self.directory / "server.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            env=env,
            start_new_session=True,  # its own process group: Ctrl-C goes to pytest only
            preexec_fn=_die_with_parent,
            **({"user": user, "group": owner_group(user), "extra_groups": []} if user else {}),
        )

    def _launch(self, spawn, ready) -> None:
        """`spawn()` the server and wait until `ready()`. Until it has started once, a port that
        another process took since `free_port()` chose it is given up for a new one; after that
        the port stays (clients keep the URL across `stop()` and `start()`)."""
        for attempt in range(3):
            try:
                spawn()
                self._wait_until(ready, f"on port {self.port}")
            except ServiceError as error:
                if self._started or attempt == 2 or "Address already in use" not in str(error):
                    raise
                self.port = free_port()
            else:
                self._started = True
                return

    def _wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                self.stop()
                raise ServiceError(f"{self.name} exited (code {code}) {what}:\n{self.log_tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"{self.name} did not answer within {self.wait_s:.0f} s {what}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        if self.directory is None or not (self.directory / "server.log").exists():
            return "(no log)"
        text = (self.directory / "server.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(empty log)"


def owner_group(user: str | int) -> int:
    entry = pwd.getpwnam(user) if isinstance(user, str) else pwd.getpwuid(user)
    return entry.pw_gid


# -- callscribe ---------------------------------------------------------------------------------


class CallscribeServer(_Server):
    """`callscribe serve` in its own process (what `make run` starts), configured by
    `CALLSCRIBE_*` variables; `start()` returns once `/healthz` answers."""

    name = "callscribe"
    wait_s = 120.0  # loading the model on a busy 2-core machine
    _stop_signal = signal.SIGINT

    def __init__(self, settings: dict[str, str], model: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.model = model

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.running:
            return
        self._make_directory()
        argv = [sys.executable, "-m", "callscribe", "serve", "--port", str(self.port)]
        env = {
            **os.environ,
            "CALLSCRIBE_VAR_DIR": str(self.directory),
            # No worker process beside each test server, unless the test asks for one.
            "CALLSCRIBE_WORKER_EMBEDDED": "false",
            **self.settings,
        }
        self._launch(
            lambda: self._spawn([*argv, *(["--model", self.model] if self.model else [])], env=env),
            self._answers,
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


# -- Redis ------------------------------------------------------------------------------------


class RedisServer(_Server):
    """`redis-server` on 127.0.0.1, without persistence; `stop()` then `start()` keeps the port."""

    name = "redis"

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if not found:
            raise ServiceUnavailable(
                "redis-server not found on PATH (Debian: apt-get install redis-server, "
                "or run scripts/install-system-deps.sh)"
            )
        self.binary = found
        super().__init__()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.running:
            return
        self._make_directory()
        self._launch(lambda: self._spawn(self._argv()), self._answers)

    def _argv(self) -> list[str]:
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",  # no snapshots, no append-only file: nothing outlives the process
            "appendonly": "no",
            "dir": str(self.directory),
            "daemonize": "no",
            "logfile": "",  # stdout, into server.log
        }
        return [
            self.binary,
            *(arg for key, value in options.items() for arg in (f"--{key}", value)),
        ]

    def ping(self, timeout: float = 1.0) -> bool:
        """True when a server answers PING on the port (whoever started it)."""
        try:
            return self.command("PING", timeout).startswith(b"+PONG")
        except OSError:
            return False

    def _answers(self) -> bool:
        """Our server answers (not another one that took the port: its folder is ours)."""
        try:
            return str(self.directory).encode() in self.command("CONFIG GET dir", 1.0)
        except OSError:
            return False

    def command(self, line: str, timeout: float = 5.0) -> bytes:
        """Send one inline command (`FLUSHALL`, `DBSIZE`) and return the start of the raw reply;
        enough for test housekeeping without a Redis client library."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            conn.sendall(line.encode() + b"\r\n")
            return conn.recv(4096)


# -- PostgreSQL -------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """Where `initdb` and `postgres` are: $CALLSCRIBE_PG_BINDIR, else Debian's newest
    /usr/lib/postgresql/<version>/bin, else the folder of `postgres` on PATH."""
    candidates: list[Path] = []
    if os.environ.get("CALLSCRIBE_PG_BINDIR"):
        candidates.append(Path(os.environ["CALLSCRIBE_PG_BINDIR"]))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)] or [0],
        reverse=True,
    )
    candidates += debian
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    raise ServiceUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or "
        "on PATH (Debian: apt-get install postgresql, or run scripts/install-system-deps.sh; "
        "or set CALLSCRIBE_PG_BINDIR)"
    )


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster (trust auth) on 127.0.0.1 with a `callscribe` database.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
    """

    name = "postgres"
    database = "callscribe"
    _stop_signal = signal.SIGINT  # fast shutdown: disconnects clients, no waiting for them

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or postgres_bindir()
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable(
                    "running as root, and PostgreSQL refuses root: no `postgres` system user "
                    "to run it as (the Debian postgresql package creates it)"
                ) from None
            self.user = "postgres"
        self._databases = 0
        super().__init__()

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self.running:
            return
        owner = pwd.getpwnam(self.user).pw_uid if self.user else None
        directory = self._make_directory(owner)
        data = directory / "data"
        if not data.exists():
            self._run(
                [
                    str(self.bindir / "initdb"),
                    f"--pgdata={data}",
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
        self._launch(lambda: self._spawn(self._argv(), user=self.user), self._answers)
        if self.database not in self._existing_databases():
            self.execute(f'CREATE DATABASE "{self.database}"')

    def _argv(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            f"-D{self.directory / 'data'}",
            f"--port={self.port}",
            "--listen_addresses=127.0.0.1",
            f"--unix_socket_directories={self.directory}",
            # Test data is disposable: skip the disk syncs.
            "--fsync=off",
            "--synchronous_commit=off",
            "--full_page_writes=off",
            "--shared_buffers=32MB",
        ]

    def new_database(self, name: str | None = None, ctype: str | None = None) -> str:
        """Create an empty database (a fresh name unless given) and return its URL; `ctype`
        sets its LC_CTYPE (the cluster's is C), e.g. `C.UTF-8` as production databases have."""
        if name is None:
            self._databases += 1
            name = f"test_{os.getpid()}_{self._databases}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        if ctype is not None and not re.fullmatch(r"[\w.-]{1,40}", ctype):
            raise ValueError(f"locale {ctype!r}")
        locale = f" TEMPLATE template0 LC_CTYPE '{ctype}'" if ctype else ""
        self.execute(f'CREATE DATABASE "{name}"{locale}')
        return self.url_for(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it."""
        name = name_or_url.rsplit("/", 1)[-1]
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str, database: str = "postgres") -> list[tuple]:
        """Run one statement in autocommit mode and return its rows (if any)."""
        import psycopg

        with psycopg.connect(self._dsn(database), autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=2"

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._dsn("postgres")) as conn:
                # Our server, not another one that took the port.
                data = conn.execute("show data_directory").fetchone()[0]
            return Path(data) == self.directory / "data"
        except psycopg.OperationalError:
            return False

    def _existing_databases(self) -> set[str]:
        return {row[0] for row in self.execute("select datname from pg_database")}

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.directory,
            timeout=WAIT_S * 3,
            **(
                {"user": self.user, "group": owner_group(self.user), "extra_groups": []}
                if self.user
                else {}
            ),
        )
        if result.returncode != 0:
            raise ServiceError(
                f"{Path(argv[0]).name} failed (code {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )


# -- Celery worker ------------------------------------------------------------------------------


class CeleryWorker(_Server):
    """`callscribe worker` in its own process, configured by `CALLSCRIBE_*` variables;
    `start()` returns once it consumes. `kill()` is a crash (SIGKILL, no shutdown code)."""

    name = "worker"
    wait_s = 120.0  # importing the stack on a busy 2-core machine

    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__()
        self.settings = settings
        self.starts = 0

    def start(self) -> None:
        if self.running:
            return
        self._make_directory()
        self.starts += 1
        self._spawn(
            [sys.executable, "-m", "callscribe", "worker"],
            env={**os.environ, **self.settings, "PYTHONUNBUFFERED": "1"},
        )
        self._wait_until(self._ready, "before consuming")

    def _ready(self) -> bool:
        """Its log (kept across restarts) says `ready.` once more than before."""
        log = self.directory / "server.log"
        return log.exists() and log.read_text(errors="replace").count(" ready.") >= self.starts
