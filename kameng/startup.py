"""Start-up guard: configuration and connection errors become one clear message, not a traceback."""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured


def describe_database(settings) -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite file {db['NAME']}"
    return f"PostgreSQL database {db.get('NAME')!r} at {db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"


def run_cli(argv: list[str]) -> None:
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        print(f"\n{exc}\n\nSee README.md, section Configuration.", file=sys.stderr)
        sys.exit(2)
    except OperationalError as exc:
        from django.conf import settings

        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        print(
            f"\nCannot use the {describe_database(settings)} (DATABASE_URL): {first_line}\n"
            "Is the server running and are the user, password and database name right?",
            file=sys.stderr,
        )
        sys.exit(2)
