"""Alembic migrations of the state store, run programmatically (``ml_core.store.migrate``)."""
