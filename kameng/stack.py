"""``make stack``: the full stack as local processes, without Docker.

PostgreSQL and Redis (persistent, under ``var/stack``), then migrations and demo data, then
gunicorn, a Celery worker and Celery beat. Logs go to ``var/stack/*.log``; Ctrl-C stops
everything. DEBUG stays on (sandbox payments, plain HTTP) but every part is the real one: tasks
go through Redis to the worker, periodic jobs come from beat.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kameng.localservices import PostgresServer, RedisServer, ServiceError

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default="var/stack")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("STACK_PG_PORT", 55432)))
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("STACK_REDIS_PORT", 56379)))
    args = parser.parse_args()
    state = (ROOT / args.dir).resolve()
    state.mkdir(parents=True, exist_ok=True)

    postgres = PostgresServer(state / "postgres", port=args.pg_port, durable=True)
    redis = RedisServer(state / "redis", port=args.redis_port, durable=True)
    servers, processes = [], []

    def shutdown(*_signal) -> None:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for server in reversed(servers):
            server.stop()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        servers.append(postgres)
        database_url = postgres.start()
        servers.append(redis)
        redis_url = redis.start()
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DEBUG": "true"}
        env["KAMENG_SERVE_ADDRESS"] = f"{args.host}:{args.port}"  # SITE_URL's default, as with make run
        python = sys.executable
        for command in (["migrate", "--no-input"], ["seed_demo"]):
            subprocess.run([python, "manage.py", *command], cwd=ROOT, env=env, check=True)

        def spawn(name: str, command: list[str]) -> None:
            log = open(state / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

        bindir = Path(python).parent
        spawn("gunicorn", [str(bindir / "gunicorn"), "kameng.wsgi", "--bind", f"{args.host}:{args.port}",
                           "--workers", "2", "--access-logfile", "-"])  # fmt: skip
        spawn("worker", [str(bindir / "celery"), "-A", "kameng", "worker", "--loglevel", "INFO", "--concurrency", "2"])
        spawn("beat", [str(bindir / "celery"), "-A", "kameng", "beat", "--loglevel", "INFO",
                       "--schedule", str(state / "celerybeat-schedule")])  # fmt: skip
        print(f"Kameng stack is up: http://{args.host}:{args.port}/  (healthz: /healthz)")
        print(f"  PostgreSQL {database_url}\n  Redis      {redis_url}\n  logs       {state}/*.log\nCtrl-C stops it.")
        while all(process.poll() is None for process in processes):
            time.sleep(1)
        failed = [Path(p.args[0]).name for p in processes if p.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited; see the logs in {state}", file=sys.stderr)
        return 1
    except ServiceError as exc:
        print(f"cannot start the stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        shutdown()


if __name__ == "__main__":
    sys.exit(main())
