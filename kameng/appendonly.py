"""Append-only tables (the money ledger, the wallet): rows are added, never changed or removed.

* :class:`AppendOnlyModel` (abstract) and its manager refuse ``save()`` of an existing row,
  ``delete()``, and queryset ``update()``/``delete()`` — corrections are new entries.
* :func:`triggers` is the migration operation that makes the database refuse ``UPDATE`` and
  ``DELETE`` too, on PostgreSQL (production, tests) and SQLite (the embedded run). ``TRUNCATE`` is
  left alone: test databases are flushed with it; production roles must not hold it.
"""

from __future__ import annotations

from django.db import migrations, models

REFUSED = "{what} are append-only: add a correcting entry instead"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(REFUSED.format(what=self.model._meta.verbose_name_plural))

    def delete(self):
        raise TypeError(REFUSED.format(what=self.model._meta.verbose_name_plural))


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError(REFUSED.format(what=self._meta.verbose_name_plural))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(REFUSED.format(what=self._meta.verbose_name_plural))


def _statements(table: str, prefix: str) -> tuple[dict, dict]:
    create = {
        "postgresql": [
            f"""
            CREATE OR REPLACE FUNCTION {prefix}_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only (% refused)', TG_OP;
            END;
            $$ LANGUAGE plpgsql;
            """,
            f"""
            CREATE TRIGGER {prefix}_no_update_delete
                BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {prefix}_append_only();
            """,
        ],
        "sqlite": [
            f"""
            CREATE TRIGGER {prefix}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only (UPDATE refused)'); END;
            """,
            f"""
            CREATE TRIGGER {prefix}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only (DELETE refused)'); END;
            """,
        ],
    }
    drop = {
        "postgresql": [
            f"DROP TRIGGER IF EXISTS {prefix}_no_update_delete ON {table};",
            f"DROP FUNCTION IF EXISTS {prefix}_append_only();",
        ],
        "sqlite": [f"DROP TRIGGER IF EXISTS {prefix}_no_update;", f"DROP TRIGGER IF EXISTS {prefix}_no_delete;"],
    }
    return create, drop


def triggers(*, table: str, prefix: str) -> migrations.RunPython:
    """The migration operation adding (and, reversed, dropping) the database's refusal."""
    create, drop = _statements(table, prefix)

    def run(statements: dict):
        def apply(apps, schema_editor):
            for sql in statements.get(schema_editor.connection.vendor, []):
                schema_editor.execute(sql, params=None)  # None: the "%" in RAISE is not a placeholder

        return apply

    return migrations.RunPython(run(create), run(drop))
