"""A throwaway PostgreSQL cluster and Redis server for the test run (a pytest plugin).

Loaded with ``-p kameng.testing.services`` (see pytest.ini) so it runs before pytest-django
reads the settings: it starts both servers on free loopback ports in a temporary directory,
points ``DATABASE_URL`` and ``REDIS_URL`` at them, and stops and deletes them when the run ends.
Nothing needs to be running beforehand, and nothing is left behind.

To use servers you already run instead, set ``TEST_DATABASE_URL`` (the test database is created
next to the named one) and/or ``TEST_REDIS_URL``.

Needs the server binaries: Debian packages ``postgresql`` and ``redis-server``. PostgreSQL
refuses to run as root; as root the cluster is run as the ``postgres`` system user that the
Debian package creates.
"""

from __future__ import annotations

import atexit
import base64
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_started: list[_Server] = []


class ServiceError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, *, timeout: float, process: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{name} exited at start-up:\n{log.read_text(errors='replace')[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceError(f"{name} did not open port {port} within {timeout}s:\n{log.read_text(errors='replace')[-2000:]}")


class _Server:
    name = ""
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _find_postgres_bindir() -> Path | None:
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


class PostgresServer(_Server):
    name = "PostgreSQL"

    def start(self) -> str:
        bindir = _find_postgres_bindir()
        if bindir is None:
            raise ServiceError(
                "PostgreSQL server binaries not found (initdb, postgres). "
                "Install them with: sudo apt-get install -y postgresql"
            )
        self.root = Path(tempfile.mkdtemp(prefix="kameng-test-pg-"))
        data, log = self.root / "data", self.root / "postgres.log"
        run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
            for path in (self.root,):
                os.chown(path, account.pw_uid, account.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.port = _free_port()
        log.touch()
        if run_as:
            os.chown(log, pwd.getpwnam("postgres").pw_uid, -1)
        with open(log, "ab") as output:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [*run_as, str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.root),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=128MB"],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _wait_for_port(self.port, timeout=30, process=self.process, name=self.name, log=log)
        # The port opens slightly before the server accepts logins; wait for "ready".
        deadline = time.monotonic() + 30
        while "ready to accept connections" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise ServiceError(f"PostgreSQL not ready:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        return f"postgres://postgres@127.0.0.1:{self.port}/kameng"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(getattr(self, "root", ""), ignore_errors=True)


class RedisServer(_Server):
    name = "Redis"

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server not found. Install it with: sudo apt-get install -y redis-server")
        self.root = Path(tempfile.mkdtemp(prefix="kameng-test-redis-"))
        self.port = _free_port()
        log = self.root / "redis.log"
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.root), "--daemonize", "no"],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _wait_for_port(self.port, timeout=15, process=self.process, name=self.name, log=log)
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(getattr(self, "root", ""), ignore_errors=True)


def _stop_all() -> None:
    while _started:
        _started.pop().stop()


def start_services() -> dict[str, str]:
    """Start what is not given by TEST_*_URL and return the environment to use."""
    env = {}
    try:
        database_url = os.environ.get("TEST_DATABASE_URL")
        if not database_url:
            server = PostgresServer()
            _started.append(server)
            database_url = server.start()
        redis_url = os.environ.get("TEST_REDIS_URL")
        if not redis_url:
            server = RedisServer()
            _started.append(server)
            redis_url = server.start()
    except (ServiceError, subprocess.CalledProcessError, OSError) as exc:
        _stop_all()
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else ""
        raise pytest.UsageError(f"Cannot start the test services: {exc}\n{detail}") from exc
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = redis_url
    return env


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Runs before pytest-django configures Django, so the settings see these variables.
    # A developer's .env never leaks into tests: every value the tests need is set here.
    os.environ["KAMENG_IGNORE_ENV_FILE"] = "1"
    os.environ["DEBUG"] = "true"
    os.environ.setdefault("CARD_CODE_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
    os.environ.update(start_services())
    atexit.register(_stop_all)
    return (yield)


def pytest_unconfigure(config):
    _stop_all()
