"""Who the request is from. The app can prove it three ways:

- the plain password, accepted only over HTTPS (the app itself only sends it to https URLs);
- a nonce and a salted SHA-1 of the password (`%sha1(%nonce%%account[password]%)%` in the app's
  template). The provider chooses the recipe, so it is configured; a nonce is accepted at most once
  per account within the window (persisted, so a restart does not reopen it);
- HTTP Digest (RFC 7616, `wcb_authUsername`/`wcb_authPassword` in the app): a request with no
  credentials gets 401 with `WWW-Authenticate: Digest` challenges; see `security.digest_auth`.

A wrong username and a wrong password get the same answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from webcallback.config import AuthSettings
from webcallback.errors import BAD_CREDENTIALS, AuthenticationFailed, BadRequest, Forbidden
from webcallback.passwords import PasswordCipher
from webcallback.security.digest import DigestResponse, expected_response
from webcallback.security.digest_auth import LOGIN_NEEDED, DigestAuthenticator, DigestInput
from webcallback.store.accounts import Account, AccountStore
from webcallback.store.db import Database
from webcallback.store.nonces import NonceStore

PASSWORD_NEEDS_HTTPS = "Passwords are accepted only over HTTPS."
MAX_NONCE = 128


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None
    nonce: str | None
    hash: str | None
    https: bool
    digest: DigestInput | None = None  # the Authorization header and the request line


def salted_hash(recipe: str, encoding: str, nonce: str, password: str) -> str:
    material = nonce + password if recipe == "nonce+password" else password + nonce
    digest = hashlib.sha1(material.encode()).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


class Authenticator:
    def __init__(
        self,
        settings: AuthSettings,
        db: Database,
        cipher: PasswordCipher,
        digest: DigestAuthenticator | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._cipher = cipher
        self._accounts = AccountStore(db)
        self._nonces = NonceStore(db)
        self._digest = digest

    def claimed_username(self, creds: Credentials) -> str | None:
        """Who the request says it is, before any check (for lockouts)."""
        if self._digest is not None:
            name = self._digest.claimed_username(creds.digest)
            if name is not None:
                return name
        return creds.username

    async def authenticate(self, creds: Credentials) -> Account:
        """The account, or an ApiError; every 401 carries fresh Digest challenges when Digest is on."""
        try:
            return await self._authenticate(creds)
        except AuthenticationFailed as exc:
            if self._digest is not None and not exc.headers:
                exc.headers.extend(self._digest.challenge_headers(stale=exc.error_id == "nonce-stale"))
            raise

    async def _authenticate(self, creds: Credentials) -> Account:
        response = self._digest.parse(creds.digest) if self._digest is not None else None
        if response is not None and creds.digest is not None:
            return await self._by_digest(response, creds.digest)
        if not creds.username:
            no_credentials = creds.password is None and creds.nonce is None and creds.hash is None
            if self._digest is not None and no_credentials:  # the Digest challenge round
                raise AuthenticationFailed(LOGIN_NEEDED, error_id="missing-credentials")
            raise BadRequest("The username is missing.", error_id="missing-parameter")
        if creds.hash is not None or creds.nonce is not None:
            return await self._by_salted_hash(creds)
        if creds.password is not None:
            return await self._by_password(creds)
        raise AuthenticationFailed("The password is missing.", error_id="missing-credentials")

    async def _by_password(self, creds: Credentials) -> Account:
        if not creds.https and not self._settings.allow_password_over_http:
            raise Forbidden(PASSWORD_NEEDS_HTTPS, error_id="password-needs-https")
        account = await self._account(creds.username or "")
        if not hmac.compare_digest(self._password_of(account).encode(), (creds.password or "").encode()):
            raise AuthenticationFailed(BAD_CREDENTIALS)
        return account

    async def _by_salted_hash(self, creds: Credentials) -> Account:
        nonce, given = creds.nonce or "", (creds.hash or "").strip()
        if not given or len(nonce) < self._settings.min_nonce_length or len(nonce) > MAX_NONCE:
            raise AuthenticationFailed("Both a nonce and a hash are needed.", error_id="missing-credentials")
        account = await self._account(creds.username or "")
        expected = salted_hash(
            self._settings.hash_recipe, self._settings.hash_encoding, nonce, self._password_of(account)
        )
        if self._settings.hash_encoding == "hex":
            expected, given = expected.lower(), given.lower()
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise AuthenticationFailed(BAD_CREDENTIALS)
        if not await self._db.run(self._nonces.claim, account.id, nonce):
            raise AuthenticationFailed("This request was already used.", error_id="nonce-replayed")
        return account

    async def _by_digest(self, response: DigestResponse, given: DigestInput) -> Account:
        assert self._digest is not None
        expires_at = self._digest.check_request(response, given)
        account = await self._account(response.username)
        expected = expected_response(response, given.method, self._password_of(account))
        if not hmac.compare_digest(expected.encode(), response.response.lower().encode()):
            raise AuthenticationFailed(BAD_CREDENTIALS)
        await self._digest.claim(response, expires_at)
        return account

    async def _account(self, username: str) -> Account:
        account = await self._db.run(self._accounts.find, username)
        if account is None:
            raise AuthenticationFailed(BAD_CREDENTIALS)
        return account

    def _password_of(self, account: Account) -> str:
        return self._cipher.decrypt(account.username, account.password_enc, account.key_id)
