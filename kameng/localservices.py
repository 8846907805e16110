"""PostgreSQL and Redis servers run as plain local processes.

Used twice: the test suite starts throwaway ones in a temporary directory
(:mod:`kameng.testing.services`), and ``make stack`` keeps persistent ones under ``var/stack``
(:mod:`kameng.stack`). Needs the Debian packages ``postgresql`` and ``redis-server``; PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _wait_until(ready, *, timeout: float, process: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited at start-up:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise ServiceError(f"{name} was not ready within {timeout}s:\n{_tail(log)}")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def find_postgres_bindir() -> Path | None:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(out)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if (Path(directory) / "postgres").exists() and (Path(directory) / "initdb").exists():
            return Path(directory)
    postgres = shutil.which("postgres")
    if postgres and shutil.which("initdb"):
        return Path(postgres).resolve().parent
    return None


class LocalServer:
    name = ""

    def __init__(self, root: Path, *, port: int | None = None):
        self.root = Path(root)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Stop the server and anything it started (its own process group: runuser + postgres)."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


class PostgresServer(LocalServer):
    """A cluster in ``root/data`` (created on first start) listening on 127.0.0.1 only."""

    name = "PostgreSQL"

    def __init__(self, root: Path, *, port: int | None = None, durable: bool = False):
        super().__init__(root, port=port)
        self.durable = durable

    def start(self, *, database: str = "kameng") -> str:
        bindir = find_postgres_bindir()
        if bindir is None:
            raise ServiceError(
                "PostgreSQL server binaries not found (initdb, postgres). "
                "Install them with: sudo apt-get install -y postgresql"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        data, log = self.root / "data", self.root / "postgres.log"
        run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync"],
                check=True, capture_output=True,
            )  # fmt: skip
        log.write_bytes(b"")
        if run_as:
            os.chown(log, pwd.getpwnam("postgres").pw_uid, -1)
        speed = (
            [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        )
        with open(log, "ab") as output:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [*run_as, str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.root),
                 "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=400", *speed],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # The port opens slightly before the server accepts logins; wait for "ready" too.
        _wait_until(
            lambda: _port_open(self.port) and "ready to accept connections" in log.read_text(errors="replace"),
            timeout=60, process=self.process, name=self.name, log=log,
        )  # fmt: skip
        subprocess.run(
            [*run_as, str(bindir / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres", database],
            capture_output=True, check=False,  # already exists on a second start: fine
        )  # fmt: skip
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


class RedisServer(LocalServer):
    name = "Redis"

    def __init__(self, root: Path, *, port: int | None = None, durable: bool = False):
        super().__init__(root, port=port)
        self.durable = durable

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server not found. Install it with: sudo apt-get install -y redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "redis.log"
        persistence = ["--appendonly", "yes"] if self.durable else ["--save", "", "--appendonly", "no"]
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                 "--daemonize", "no", *persistence],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _wait_until(lambda: _port_open(self.port), timeout=15, process=self.process, name=self.name, log=log)
        return f"redis://127.0.0.1:{self.port}/0"
