"""A throwaway PostgreSQL cluster and Redis server for the test run (a pytest plugin).

Loaded with ``-p kameng.testing.services`` (see pytest.ini) so it runs before pytest-django
reads the settings: it starts both servers on free loopback ports in a temporary directory,
points ``DATABASE_URL`` and ``REDIS_URL`` at them, and stops and deletes them when the run ends.
Nothing needs to be running beforehand, and nothing is left behind.

To use servers you already run instead, set ``TEST_DATABASE_URL`` (the test database is created
next to the named one) and/or ``TEST_REDIS_URL``.

With pytest-xdist (``-n 2``) the controlling process starts the servers once and its workers
inherit the environment: each worker keeps pytest-django's own test database (``test_…_gw0``)
and gets a Redis database number of its own (``/1``, ``/2``…), so one worker's cache clear,
rate limits or Celery queue never reach another's.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from kameng.localservices import LocalServer, PostgresServer, RedisServer, ServiceError

_started: list[LocalServer] = []
_scratch = Path(tempfile.mkdtemp(prefix="kameng-test-"))
_scratch.chmod(0o755)  # as root, the postgres user must be able to enter it


def _stop_all() -> None:
    while _started:
        _started.pop().stop()
    shutil.rmtree(_scratch, ignore_errors=True)


def _start(server: LocalServer) -> str:
    _started.append(server)
    return server.start()


def start_services() -> dict[str, str]:
    """Start what TEST_DATABASE_URL / TEST_REDIS_URL do not provide; return the environment."""
    try:
        database_url = os.environ.get("TEST_DATABASE_URL") or _start(PostgresServer(_scratch / "postgres"))
        redis_url = os.environ.get("TEST_REDIS_URL") or _start(RedisServer(_scratch / "redis"))
    except (ServiceError, subprocess.CalledProcessError, OSError) as exc:
        _stop_all()
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else ""
        raise pytest.UsageError(f"Cannot start the test services: {exc}\n{detail}") from exc
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Runs before pytest-django configures Django, so the settings see these variables.
    # A developer's .env never leaks into tests: every value the tests need is set here.
    os.environ["KAMENG_IGNORE_ENV_FILE"] = "1"
    os.environ["DEBUG"] = "true"
    os.environ.setdefault("CARD_CODE_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        os.environ.update(start_services())
        atexit.register(_stop_all)
    else:
        os.environ["REDIS_URL"] = redis_for_worker(os.environ["REDIS_URL"], worker)
    return (yield)


def redis_for_worker(url: str, worker: str) -> str:
    """The controller's Redis URL with database ``1 + n`` for xdist worker ``gw<n>``."""
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{1 + int(worker.removeprefix('gw'))}"


def pytest_unconfigure(config):
    _stop_all()
