"""Migration 0002_telephony and the merge with billing's 0003: a database at either branch's head
(as main or this branch left it) upgrades to the joined head with every table."""

from __future__ import annotations

from importlib import resources

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from webcallback.store.db import Database


def _head() -> str:
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("webcallback.store") / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None  # one head: the branches are joined
    return head


def _upgrade(db: Database, target: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("webcallback.store") / "migrations"))
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, target)


@pytest.mark.parametrize("start", ["0002_telephony", "0003_billing"])
def test_either_branch_upgrades_to_the_joined_head(db_url: str, start: str) -> None:
    db = Database(db_url)
    try:
        _upgrade(db, start)
        db.migrate()
        tables = set(inspect(db.engine).get_table_names())
        assert {"callback_legs", "callback_cdrs", "rate_plans", "rates", "callbacks"} <= tables
        with db.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        assert version == [_head()]  # the joined head, or what later migrations put on top of it
    finally:
        db.close()
