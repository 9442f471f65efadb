"""The `webcallback` command."""

from __future__ import annotations

import click

from webcallback import __version__
from webcallback.cli.account_cmd import account
from webcallback.cli.billing_cmd import billing_group
from webcallback.cli.calls_cmd import calls
from webcallback.cli.cdr_cmd import cdr_group
from webcallback.cli.client_cmd import client
from webcallback.cli.common import config_option
from webcallback.cli.db_cmd import db_group
from webcallback.cli.provision_cmd import provision
from webcallback.cli.rates_cmd import rates
from webcallback.cli.security_cmd import security
from webcallback.cli.server_cmd import config_group, run
from webcallback.cli.webhooks_cmd import account_webhook, webhooks_group


@click.group()
@click.version_option(__version__, prog_name="webcallback")
@config_option
def main() -> None:
    """Web callback for Acrobits softphones: takes the app's request, calls both numbers, connects them."""


main.add_command(run)
main.add_command(config_group)
main.add_command(db_group)
main.add_command(account)
main.add_command(calls)
main.add_command(rates)
main.add_command(cdr_group)
main.add_command(billing_group)
main.add_command(client)
main.add_command(provision)
main.add_command(security)
main.add_command(webhooks_group)
account.add_command(account_webhook)
