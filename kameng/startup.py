"""Start-up guard: configuration and connection errors become one clear message, not a traceback."""

from __future__ import annotations

import sys

from django.core.exceptions import ImproperlyConfigured


def describe_database(settings) -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite file {db['NAME']}"
    return f"PostgreSQL database {db.get('NAME')!r} at {db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"


def _can_connect(connection) -> bool:
    from django.db.utils import Error

    try:
        connection.ensure_connection()
    except Error:
        return False
    return True


def run_cli(argv: list[str]) -> None:
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        print(f"\n{exc}\n\nSee README.md, section Configuration.", file=sys.stderr)
        sys.exit(2)
    except OperationalError as exc:
        if "--traceback" in argv:
            raise
        from django.conf import settings
        from django.db import connection

        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if not _can_connect(connection):  # the trouble is the connection itself
            advice = "Is the server running and are the user, password and database name right?"
            where = describe_database(settings)
            print(f"\nCannot use the {where} (DATABASE_URL): {first_line}\n{advice}", file=sys.stderr)
        else:  # connected; a statement failed (a broken migration, a query this database does not know)
            print(
                f"\nThe {describe_database(settings)} refused a statement: {first_line}\n"
                "Run the command again with --traceback for the details.",
                file=sys.stderr,
            )
        sys.exit(2)
