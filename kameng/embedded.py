"""Periodic jobs of the embedded run: celery beat's schedule, run by a thread of the web process.

Production runs ``celery -A kameng beat`` next to the workers. The embedded run (``make run``: no
``REDIS_URL``, tasks eager) has no broker a beat process could send to — an in-memory broker lives
in one process — so without this nothing would expire unpaid orders, create settlements or query
lost payments. Instead the serving process starts :class:`EmbeddedBeat` in a daemon thread
(``start``, called from kameng/wsgi.py once the WSGI application exists — so runserver's
autoreloader parent, which only watches files, never runs it; each reloaded child starts its own).

The thread reads ``CELERY_BEAT_SCHEDULE`` — every entry, the same schedule objects beat uses
(``schedule``, ``crontab``: ``is_due``) — and runs each due task eagerly in the thread. Jobs with an
interval are due at the first tick (they catch up with what happened while the shop was stopped);
crontab jobs wait for their time, as with beat. The thread has its own database connections
(Django's are per thread); they are closed after every tick, so the SQLite file is never held open
between ticks. SQLite takes concurrent writers from this thread and runserver's request threads one
after the other (``transaction_mode=IMMEDIATE`` and a busy timeout, see settings). The jobs' own
``exclusive`` locks (the process-local cache) keep a slow run from overlapping the next.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery.schedules import crontab, maybe_schedule
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

FIRST_TICK_AFTER = 2.0  # seconds: let the server finish starting first
MIN_SLEEP, MAX_SLEEP = 1.0, 60.0


@dataclass
class Entry:
    name: str
    task: str
    schedule: object  # celery.schedules.schedule or crontab, with our clock
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    last_run_at: datetime | None = None
    runs: int = 0


class EmbeddedBeat:
    """Runs the entries of a beat schedule eagerly. ``now`` is the clock (tests pass a fake one)."""

    def __init__(self, beat_schedule: dict | None = None, *, app=None, now: Callable[[], datetime] | None = None):
        if app is None:
            from kameng.celery import app
        self.app = app
        app.loader.import_default_modules()  # the apps' tasks modules (autodiscovery), as a worker does
        self.now = now or app.now
        started = self.now()
        self.entries: dict[str, Entry] = {}
        for name, spec in (settings.CELERY_BEAT_SCHEDULE if beat_schedule is None else beat_schedule).items():
            timing = copy.copy(maybe_schedule(spec["schedule"], app=app))
            timing.nowfun = self.now
            # Interval jobs catch up at once; crontab jobs wait for their next time, as beat does.
            last = started if isinstance(timing, crontab) else started - timing.run_every - timedelta(seconds=1)
            self.entries[name] = Entry(
                name=name,
                task=spec["task"],
                schedule=timing,
                args=tuple(spec.get("args", ())),
                kwargs=dict(spec.get("kwargs", {})),
                last_run_at=last,
            )
            if spec["task"] not in app.tasks:
                raise LookupError(f"beat entry {name!r} names an unknown task {spec['task']!r}")

    def tick(self) -> tuple[list[str], float]:
        """Run every due entry once; returns their names and the seconds until the next one is due.

        Closes the calling thread's database connections afterwards (it is meant for its own thread)."""
        ran: list[str] = []
        wait = MAX_SLEEP
        try:
            for entry in self.entries.values():
                due, _next = entry.schedule.is_due(entry.last_run_at)
                if due:
                    entry.last_run_at = self.now()
                    self._run(entry)
                    ran.append(entry.name)
                    _due, _next = entry.schedule.is_due(entry.last_run_at)
                wait = min(wait, _next)
        finally:
            connections.close_all()  # this thread's connections only
        return ran, wait

    def _run(self, entry: Entry) -> None:
        entry.runs += 1
        try:
            result = self.app.tasks[entry.task].apply(args=entry.args, kwargs=entry.kwargs)
            if result.failed():
                logger.error("periodic job %s failed: %s", entry.name, type(result.result).__name__)
        except Exception:
            # A failing job must not stop the others or the thread; the next tick tries again.
            logger.exception("periodic job %s failed", entry.name)

    def run_forever(self, stop: threading.Event) -> None:
        wait = FIRST_TICK_AFTER
        while not stop.wait(wait):
            try:
                _ran, wait = self.tick()
            except Exception:
                logger.exception("embedded periodic jobs: tick failed")
                wait = MAX_SLEEP
            wait = min(max(wait, MIN_SLEEP), MAX_SLEEP)


_lock = threading.Lock()
_running: tuple[EmbeddedBeat, threading.Thread, threading.Event] | None = None


def start(*, out=None) -> EmbeddedBeat | None:
    """Start the periodic-jobs thread in this process (once) when ``EMBEDDED_SCHEDULER`` is on."""
    global _running
    if not settings.EMBEDDED_SCHEDULER:
        return None
    with _lock:
        if _running is None:
            beat = EmbeddedBeat()
            stop = threading.Event()
            thread = threading.Thread(target=beat.run_forever, args=(stop,), name="kameng-periodic-jobs", daemon=True)
            thread.start()
            _running = (beat, thread, stop)
            out = out or sys.stdout
            out.write(
                f"Periodic jobs: running in-process ({len(beat.entries)} jobs of CELERY_BEAT_SCHEDULE, "
                "kameng/embedded.py); production runs them with `celery -A kameng beat`.\n"
            )
            out.flush()
    return _running[0]
