"""`webcallback db upgrade` and `webcallback db current`: the schema, upgraded only when asked.

Every other command (`webcallback run` included) creates the schema of an empty database but
refuses one at another revision, so an upgrade is a step the operator takes, after a backup
(docs/deployment.md), and one node of several does not change the schema under the others."""

from __future__ import annotations

import sys

import click

from webcallback.cli.common import config_option, settings_from
from webcallback.config import mask_url_password


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("current")
@config_option
@click.pass_context
def current(ctx: click.Context) -> None:
    """Show the schema revision; exit 0 when it is this version's, 1 when not."""
    from webcallback.store.db import Database

    db = Database(settings_from(ctx).database.url)
    try:
        revision, head = db.revisions()
    finally:
        db.close()
    if revision == head:
        click.echo(f"{revision} (up to date)")
        return
    if revision is None:
        click.echo(f"no schema yet; this version's is {head} (`webcallback db upgrade` creates it)")
    elif Database.knows(revision):
        click.echo(f"{revision}; this version needs {head}: run `webcallback db upgrade`")
    else:
        click.echo(f"{revision}, unknown to this version (newest {head}): a newer webcallback upgraded it")
    sys.exit(1)


@db_group.command("upgrade")
@config_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Upgrade the schema to this version's (back the database up first)."""
    from webcallback.store.db import Database

    settings = settings_from(ctx)
    db = Database(settings.database.url)
    try:
        before, head = db.revisions()
        if before is not None and not Database.knows(before):
            click.echo(f"error: the database is at {before}, newer than this version ({head})", err=True)
            sys.exit(1)
        db.migrate()
    finally:
        db.close()
    where = mask_url_password(settings.database.url)
    if before == head:
        click.echo(f"{where}: already at {head}")
    else:
        click.echo(f"{where}: upgraded from {before or 'an empty database'} to {head}")
