"""Celery tasks of the catalog: thin wrappers that load ids and call services (see kameng/tasks.py)."""
