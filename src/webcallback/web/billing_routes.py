"""The balance checker (`genericBalanceCheckUrl`) and rate checker (`genericRateCheckUrl`).

Both take parameters and credentials exactly like the callback endpoint (`read_input`, any of
query/form/JSON/XML) and answer in the same response format. The balance needs an account; the
rate check uses the account's plan when credentials are sent and the default plan otherwise
(`billing.rate_auth = "required"` refuses anonymous checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from webcallback.errors import AuthenticationFailed, BadRequest
from webcallback.security.digest_auth import LOGIN_NEEDED
from webcallback.web.inputs import ApiInput, read_input, response_format
from webcallback.web.params import XML, pick
from webcallback.web.responses import respond

if TYPE_CHECKING:
    from webcallback.billing.service import BillingService
    from webcallback.store.accounts import Account
    from webcallback.web.app import WebCallbackApi


# The checkers' own words for the Digest challenge round (the shared one speaks of callbacks).
BALANCE_LOGIN_NEEDED = "Log in to see your balance."
RATE_LOGIN_NEEDED = "Log in to see call rates."


class BillingApi:
    def __init__(self, api: WebCallbackApi, billing: BillingService) -> None:
        self.api = api
        self.settings = api.settings
        self.billing = billing

    async def balance(self, request: Request) -> Response:
        api_input = await read_input(request, self.settings, self.api.proxies)
        account = await self._authenticate(api_input, BALANCE_LOGIN_NEEDED)
        return self._respond(request, self.billing.balance(account).fields())

    async def rate(self, request: Request) -> Response:
        api_input = await read_input(request, self.settings, self.api.proxies)
        target = pick(api_input.params.values, self.settings.api.params.target, "destination number")
        if not target:
            raise BadRequest("The number to rate is missing.", error_id="missing-parameter")
        account = await self._optional_account(api_input)
        return self._respond(request, await self.billing.rate_strings(account, target))

    async def _optional_account(self, api_input: ApiInput) -> Account | None:
        if api_input.credentials.username:
            return await self._authenticate(api_input, RATE_LOGIN_NEEDED)
        if self.settings.billing.rate_auth == "required":
            raise AuthenticationFailed("Rate checks need a username.", error_id="missing-credentials")
        return None

    async def _authenticate(self, api_input: ApiInput, login_needed: str) -> Account:
        """Through the security guard, like the callback endpoint: a locked-out user or address is
        refused before the password is checked, and a wrong password counts towards the lockout
        (otherwise these checkers would be an unlimited password-guessing oracle)."""
        services = self.api.services
        guard = services.callback_service.guard
        try:
            return await guard.authenticate(
                services.authenticator, api_input.credentials, api_input.client.address
            )
        except AuthenticationFailed as exc:
            if exc.message == LOGIN_NEEDED:
                exc.message = login_needed
                exc.args = (login_needed,)
            raise

    def _respond(self, request: Request, fields: Mapping[str, str | float]) -> Response:
        fmt = response_format(request, self.settings)
        if fmt == XML:  # the legacy XML parsers read <error>0</error> as success
            fields = {"error": 0, **fields}
        return respond(fmt, 200, fields)

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "POST"]
        out: list[BaseRoute] = []
        for path, handler in (
            (self.settings.billing.balance_path, self.balance),
            (self.settings.billing.rate_path, self.rate),
        ):
            path = "/" + path.strip("/")
            out += [Route(path, handler, methods=methods), Route(path + "/", handler, methods=methods)]
        return out
