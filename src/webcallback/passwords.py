"""Account passwords, encrypted at rest with AES-256-GCM.

The salted-hash login (`sha1(nonce + password)`) needs the plaintext, so a one-way hash cannot be
used; instead the password is encrypted with a key kept outside the database, with the username as
associated data so a ciphertext copied onto another account does not decrypt. Each ciphertext
records the id of its key, which is what lets keys be rotated without downtime: old keys stay
readable while rows are re-encrypted under the new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from webcallback.config import SecretSettings

log = logging.getLogger(__name__)

NONCE_BYTES = 12


class SecretKeyError(Exception):
    """The key is missing, malformed, or does not open a stored password."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"webcallback-key-id" + key).hexdigest()[:16]


RELOAD_INTERVAL = 5.0


class PasswordCipher:
    """Encrypts under the first key; decrypts under whichever key a ciphertext names.

    With a `reload` function (the key file), meeting a ciphertext under a key it does not know makes
    the cipher re-read its keys (at most every few seconds): after `webcallback security rotate-key`
    re-encrypts the accounts, running servers pick the new key up without a restart."""

    def __init__(self, keys: Sequence[bytes], reload: Callable[[], list[bytes]] | None = None) -> None:
        self._reload = reload
        self._reloaded_at = 0.0
        self._lock = threading.Lock()
        self._set_keys(keys)

    def _set_keys(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no password key configured")
        for key in keys:
            if len(key) != 32:
                raise SecretKeyError("a password key must be 32 bytes (base64 of 32 random bytes)")
        self._raw = list(keys)
        self._current = key_id(keys[0])
        self._keys = {key_id(k): AESGCM(k) for k in keys}

    def derived_keys(self, label: bytes) -> list[bytes]:
        """Per-purpose keys (HMAC of `label` under each key, the current one first), e.g. to sign
        Digest nonces so that every node holding the key file can check them."""
        return [hmac.new(k, label, hashlib.sha256).digest() for k in self._raw]

    def _maybe_reload(self) -> None:
        if self._reload is None:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._reloaded_at < RELOAD_INTERVAL:
                return
            self._reloaded_at = now
            try:
                self._set_keys(self._reload())
            except (OSError, SecretKeyError):
                return

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        """Every configured key's id, the current one first."""
        return list(self._keys)

    def encrypt(self, username: str, password: str) -> tuple[bytes, str]:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, password.encode(), username.encode())
        return nonce + sealed, self._current

    def decrypt(self, username: str, blob: bytes, kid: str) -> str:
        aead = self._keys.get(kid)
        if aead is None:
            self._maybe_reload()
            aead = self._keys.get(kid)
        if aead is None:
            raise SecretKeyError(f"password key {kid} is not configured")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], username.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(f"stored password of {username!r} does not open with key {kid}") from None


def load_cipher(settings: SecretSettings, *, create: bool = True) -> PasswordCipher:
    """The key from `secrets.key`, else from `secrets.key_file` (created 0600 on first use).

    Either may hold several base64 keys separated by commas or lines: the first encrypts, all
    decrypt (rotation)."""
    if settings.key:
        return PasswordCipher(parse_keys(settings.key.reveal()))
    path = Path(settings.key_file)
    if not path.exists():
        if not create:
            raise SecretKeyError(f"key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        log.warning("password key file %s does not exist: creating a new key", path.resolve())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key_text() + "\n")
    return PasswordCipher(read_key_file(path), reload=lambda: read_key_file(path))


def new_key_text() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def read_key_file(path: Path) -> list[bytes]:
    return parse_keys(path.read_text())


def parse_keys(text: str) -> list[bytes]:
    return [_decode_key(part) for part in text.replace(",", "\n").split() if part]


def _decode_key(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise SecretKeyError("a password key must be base64") from None
