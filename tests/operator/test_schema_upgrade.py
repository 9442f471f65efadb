"""The schema is upgraded only by `webcallback db upgrade`: other commands, `run` included,
create the schema of an empty database but refuse one at an older (or unknown) revision."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config

from tests.operator.test_paths_and_keys import webcallback
from webcallback.store.db import Database


def at_revision(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("webcallback.store") / "migrations"))
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        db.close()


def test_an_old_schema_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    at_revision(url, "0003_billing")
    env = {"WEBCALLBACK_DATABASE__URL": url, "WEBCALLBACK_ENGINE__KIND": "none"}
    head = Database(url).revisions()[1]
    current = webcallback("db", "current", cwd=tmp_path, **env)
    assert current.returncode == 1
    assert current.stdout.strip() == f"0003_billing; this version needs {head}: run `webcallback db upgrade`"
    for cmd in (("account", "list"), ("run",)):
        refused = webcallback(*cmd, cwd=tmp_path, **env)
        assert refused.returncode == 1, refused.stderr
        assert "schema is at revision 0003_billing" in refused.stderr
        assert "run `webcallback db upgrade`" in refused.stderr
    assert Database(url).revisions()[0] == "0003_billing"  # nothing upgraded it on the way
    upgraded = webcallback("db", "upgrade", cwd=tmp_path, **env)
    assert upgraded.returncode == 0 and f"upgraded from 0003_billing to {head}" in upgraded.stdout
    assert webcallback("db", "upgrade", cwd=tmp_path, **env).stdout.strip().endswith(f"already at {head}")
    assert webcallback("db", "current", cwd=tmp_path, **env).stdout.strip() == f"{head} (up to date)"
    assert webcallback("account", "list", cwd=tmp_path, **env).returncode == 0


def test_an_empty_database_gets_the_schema_and_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    env = {"WEBCALLBACK_DATABASE__URL": url, "WEBCALLBACK_ENGINE__KIND": "none"}
    empty = webcallback("db", "current", cwd=tmp_path, **env)
    assert empty.returncode == 1 and empty.stdout.startswith("no schema yet")
    assert webcallback("account", "list", cwd=tmp_path, **env).returncode == 0  # created, at head
    db = Database(url)
    head = db.revisions()[1]
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    db.close()
    refused = webcallback("account", "list", cwd=tmp_path, **env)
    assert refused.returncode == 1 and "9999_from_the_future, which this version" in refused.stderr
    refused = webcallback("db", "upgrade", cwd=tmp_path, **env)
    assert refused.returncode == 1 and f"newer than this version ({head})" in refused.stderr
