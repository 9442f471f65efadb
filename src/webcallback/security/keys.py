"""Rotating the key that encrypts account passwords, without downtime.

`rotate_key_file` puts a new key first in the key file (it encrypts from then on; the old keys
stay below it and still decrypt). `reencrypt_accounts` then rewrites every password under the
first key. Each row is rewritten with a conditional UPDATE (same ciphertext as read), so a password
changed meanwhile is not overwritten. Running servers re-read the key file when they meet a key
id they do not know (`PasswordCipher`), so they need no restart.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, update

from webcallback.passwords import PasswordCipher, key_id, new_key_text, parse_keys, read_key_file
from webcallback.store.db import Database
from webcallback.store.schema import accounts


def rotate_key_file(path: Path) -> str:
    """Prepend a fresh key to the key file (atomically, mode 0600); returns the new key's id."""
    old = path.read_text()
    read_key_file(path)  # refuse to touch a file that does not parse
    new = new_key_text()
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new + "\n" + old.strip() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return key_id(parse_keys(new)[0])


def reencrypt_accounts(db: Database, cipher: PasswordCipher) -> tuple[int, int]:
    """Re-encrypt every password not under the current key. Returns (rewritten, skipped):
    skipped rows changed while we worked and are already under some current key."""
    current = cipher.current_key_id
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(accounts.c.id, accounts.c.username, accounts.c.password_enc, accounts.c.key_id).where(
                accounts.c.key_id != current
            )
        ).all()
    done = skipped = 0
    for row_id, username, blob, kid in rows:
        password = cipher.decrypt(username, blob, kid)
        new_blob, new_kid = cipher.encrypt(username, password)
        with db.engine.begin() as conn:
            result = conn.execute(
                update(accounts)
                .where(accounts.c.id == row_id, accounts.c.password_enc == blob, accounts.c.key_id == kid)
                .values(password_enc=new_blob, key_id=new_kid)
            )
        if result.rowcount == 1:
            done += 1
        else:
            skipped += 1
    return done, skipped


def keys_in_use(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {str(k) for k in conn.execute(select(accounts.c.key_id).distinct()).scalars()}
