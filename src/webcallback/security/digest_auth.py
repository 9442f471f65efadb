"""HTTP Digest as a login method of the callback endpoint: checks a parsed response against the
request and the server's nonces, and builds the 401 challenges. The password comparison itself is
done by `service.auth.Authenticator`, which owns the accounts."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from webcallback.config import ConfigError, DigestSettings
from webcallback.errors import AuthenticationFailed, BadRequest
from webcallback.security import digest
from webcallback.security.digest import DigestHeaderError, DigestResponse, NonceMint
from webcallback.security.store import SecurityStore
from webcallback.store.db import Database

LOGIN_NEEDED = "Log in to request a callback."
NONCE_STALE = "The login expired; please try again."
REPLAYED = "This request was already used."


@dataclass(frozen=True)
class DigestInput:
    """What Digest needs from the HTTP request besides the header."""

    authorization: str | None
    method: str
    path: str
    query: str


class DigestAuthenticator:
    def __init__(
        self,
        settings: DigestSettings,
        db: Database,
        keys: list[bytes],
        clock: Callable[[], float] = time.time,
    ) -> None:
        for algorithm in settings.algorithms:
            if not digest.supported(algorithm):
                raise ConfigError("security.digest.algorithms", f"{algorithm!r} is not MD5 or SHA-256")
        self.settings = settings
        self._db = db
        self._store = SecurityStore(db)
        self._mint = NonceMint(keys, settings.nonce_lifetime)
        self._opaque = hmac.new(keys[0], b"opaque:" + settings.realm.encode(), hashlib.sha256).hexdigest()[
            :32
        ]
        self._clock = clock

    def parse(self, given: DigestInput | None) -> DigestResponse | None:
        if given is None or not given.authorization:
            return None
        try:
            return digest.parse_authorization(given.authorization)
        except DigestHeaderError:
            raise BadRequest(
                "The Authorization header is malformed.", error_id="malformed-authorization"
            ) from None

    def claimed_username(self, given: DigestInput | None) -> str | None:
        try:
            resp = self.parse(given)
        except BadRequest:
            return None
        return resp.username if resp else None

    def challenge_headers(self, *, stale: bool = False) -> list[tuple[str, str]]:
        nonce = self._mint.issue(self._clock())
        values = digest.challenges(
            self.settings.realm, self.settings.algorithms, nonce, self._opaque, stale=stale
        )
        return [("WWW-Authenticate", v) for v in values]

    def check_request(self, resp: DigestResponse, given: DigestInput) -> float:
        """Everything but the password; returns when the nonce expires. Raises an ApiError."""
        offered = {a.upper() for a in self.settings.algorithms}
        if resp.algorithm.upper() not in offered or not digest.supported(resp.algorithm):
            raise AuthenticationFailed("Unsupported Digest algorithm.", error_id="authentication-failed")
        if resp.qop != "auth" or not resp.cnonce or resp.userhash:
            raise AuthenticationFailed("Digest needs qop=auth.", error_id="authentication-failed")
        if resp.realm != self.settings.realm:
            raise AuthenticationFailed(LOGIN_NEEDED, error_id="missing-credentials")
        if not digest.uri_matches(resp.uri, given.path, given.query):
            raise BadRequest("The Digest uri does not match the request.", error_id="malformed-authorization")
        try:
            resp.nonce_count  # noqa: B018 - validates the format
        except DigestHeaderError:
            raise BadRequest("The Digest nc is malformed.", error_id="malformed-authorization") from None
        issued = self._mint.issued_at(resp.nonce)
        now = self._clock()
        if issued is None or issued > now + 5 or now - issued > self.settings.nonce_lifetime:
            raise AuthenticationFailed(NONCE_STALE, error_id="nonce-stale")
        return issued + self.settings.nonce_lifetime

    async def claim(self, resp: DigestResponse, expires_at: float) -> None:
        """Record the nonce-count; a count not above every earlier one is a replay."""
        if not await self._db.run(self._store.use_nonce, resp.nonce, resp.nonce_count, expires_at):
            raise AuthenticationFailed(REPLAYED, error_id="nonce-replayed")
