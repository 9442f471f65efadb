from __future__ import annotations

from collections.abc import Iterator

import pytest

from webcallback.store.db import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated store on each database of `db_url` (SQLite, then PostgreSQL)."""
    database = Database(db_url)
    database.migrate()
    yield database
    database.close()
