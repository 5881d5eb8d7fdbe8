"""Alembic migrations of the whole product (one history, SQLite and PostgreSQL).

``opsctl db upgrade`` runs them; ``opsctl.db`` holds the programmatic config.
"""
