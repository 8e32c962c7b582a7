"""Secrets at rest: the Twilio auth tokens in the store are Fernet-encrypted.

A copied database file (or a PostgreSQL dump) is then useless without the key, which lives
apart from it: in `SMSLINK_SECRET_KEY` (containers, several workers sharing one database)
or in `<home>/secret.key`, created owner-only on first use.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from smslink.settings import smslink_home

KEY_ENV = "SMSLINK_SECRET_KEY"
KEY_FILE_NAME = "secret.key"

#: What a secret looks like on screen. Fixed, so it reveals neither the secret's length nor
#: any of its characters: Twilio's console shows none of the auth token either, and an
#: administrator tells connections apart by name and Account SID, not by token digits.
MASK = "********"


class SecretError(Exception):
    """The key is missing, malformed, exposed, or not the one the secrets were sealed with."""


def mask(secret: str | None) -> str:
    """Display form of a secret: the fixed MASK when one is set, "" when there is none."""
    return MASK if secret else ""


class SecretBox:
    """Encrypts and decrypts secrets with one Fernet key.

    Without an explicit key the key is resolved on first use, not on construction, so
    opening a store to list runs never creates a key file nobody needed yet.
    """

    def __init__(self, key: str | bytes | None = None, *, home: Path | None = None) -> None:
        self._fernet: Fernet | None = _fernet(key, "the given key") if key is not None else None
        self._home = home

    def encrypt(self, plain: str) -> str:
        return self._key().encrypt(plain.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._key().decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as e:
            raise SecretError(
                "the stored auth token cannot be decrypted with this key: "
                "was SMSLINK_SECRET_KEY or secret.key changed?"
            ) from e

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = _load_key(self._home)
        return self._fernet


def _fernet(key: str | bytes, where: str) -> Fernet:
    try:
        return Fernet(key.strip())
    except (ValueError, TypeError) as e:
        raise SecretError(
            f"{where} is not a valid Fernet key (32 url-safe base64-encoded bytes); "
            'make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from e


def _load_key(home: Path | None) -> Fernet:
    env = os.environ.get(KEY_ENV)
    if env:
        return _fernet(env, KEY_ENV)
    path = (home or smslink_home()) / KEY_FILE_NAME
    if not path.exists():
        _create_key_file(path)
    _check_private(path)
    return _fernet(path.read_bytes(), str(path))


def _create_key_file(path: Path) -> None:
    """Write a new key so that it is never readable by others, not even briefly, and never
    seen half-written: it goes to an O_EXCL 0600 temporary file that is then hard-linked
    into place. When two processes race, the link fails for one, which uses the winner's key.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, Fernet.generate_key())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: its key wins
    finally:
        os.unlink(tmp)


def _check_private(path: Path) -> None:
    """Refuse a key file others can read or write, as ssh does: it would unseal every token."""
    if os.name == "nt":  # POSIX modes mean nothing there; the user profile ACL protects it
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretError(
            f"{path} is accessible by other users (mode {mode:o}); "
            f"run: chmod 600 {path} (and consider the key compromised if others could read it)"
        )
