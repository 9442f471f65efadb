"""`webcallback run` and `webcallback config show`."""

from __future__ import annotations

import gc
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from webcallback.cli.common import config_option, settings_from
from webcallback.config import ConfigError, Settings, settings_as_dict, to_toml
from webcallback.logs import configure as configure_logging
from webcallback.service.node import NodeInUse, NodeLock, node_id


@click.group("config")
def config_group() -> None:
    """Inspect the configuration, or write a sample one."""


@config_group.command("show")
@config_option
@click.pass_context
def show(ctx: click.Context) -> None:
    """Print the effective configuration (file + environment + defaults), secrets masked."""
    click.echo(to_toml(settings_as_dict(settings_from(ctx))).strip())


@config_group.command("init")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write to this file (refused if it exists) instead of standard output.",
)
def init(output: str | None) -> None:
    """Write a commented sample configuration: every setting, its documentation and its default."""
    from webcallback.config_sample import sample_config

    text = sample_config()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        click.echo(f"error: {output} exists; not overwritten", err=True)
        raise SystemExit(1) from None
    os.fchmod(fd, 0o640)  # whatever the umask: it may come to hold secrets
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    click.echo(f"wrote {output}", err=True)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"server.listen must be host:port, not {listen!r}")
    return host.strip("[]"), int(port)


@click.command("run")
@config_option
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Once started, write the bound HTTP and SIP addresses here (JSON; see web/listen.py).",
)
@click.pass_context
def run(ctx: click.Context, ready_file: Path | None) -> None:
    """Start the service (HTTP API, dispatcher and telephony engine)."""
    import uvicorn

    from webcallback.store.db import SchemaNotCurrent
    from webcallback.web.hardening import uvicorn_limits
    from webcallback.web.listen import ListenError, bind_http
    from webcallback.web.process import ServiceServer
    from webcallback.web.server import build_app
    from webcallback.web.tls import ReloadableCertificate

    settings = settings_from(ctx)
    lock = _claim_node(settings)
    settings = replace(settings, node=replace(settings.node, id=lock.node))
    # With thousands of live SIP transactions, CPython's default thresholds ran full collections
    # that paused the SIP reactor for 1-2 s and failed calls; a high first-generation threshold
    # removed every full pass (BENCHMARKS.md, "SIP engine capacity"). Process-wide, so set here.
    gc.set_threshold(100_000, 50, 100)
    configure_logging(settings.log)  # every component's records, one format (logs.py)
    host, port = split_listen(settings.server.listen)
    try:
        sock, settings = bind_http(settings, host, port)  # port 0 resolved before the app reads it
    except ListenError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    tls: dict[str, Any] = {}
    if settings.server.tls_cert and settings.server.tls_key:
        # Our own context (minimum TLS version) handed to uvicorn, kept for SIGHUP reloads.
        cert = ReloadableCertificate(
            settings.server.tls_cert, settings.server.tls_key, settings.security.tls_min_version
        )
        cert.install_sighup()
        tls = {
            "ssl_certfile": settings.server.tls_cert,
            "ssl_keyfile": settings.server.tls_key,
            "ssl_context_factory": lambda _config, _default: cert.context,
        }
    try:
        limits = uvicorn_limits(settings.server)
        app = build_app(settings, prepare=True)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except SchemaNotCurrent as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # uvicorn's loggers propagate to ours (logs.configure)
        log_level=None,
        access_log=False,  # web/access.py writes the access lines
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        **limits,
        **tls,
    )
    services = app.state.services
    server = ServiceServer(config, settings, ready_file, hurry=services.stop_draining.set,
                           stopping=services.events.close)  # fmt: skip
    server.run(sockets=[sock])
    lock.release()


def _claim_node(settings: Settings) -> NodeLock:
    """This node's id, locked for the life of the process; refuses (exit 1) a second instance
    with the same id or the same SIP port on this machine."""
    from webcallback.web.process import PortInUse, check_sip_ports

    try:
        check_sip_ports(settings)
        lock = NodeLock(settings.node.state_dir, node_id(settings))
        lock.acquire()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except (PortInUse, NodeInUse, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    return lock
