"""Secrets at rest: the Twilio auth tokens in the store are Fernet-encrypted.

A copied database file (or a PostgreSQL dump) is then useless without the key, which lives
apart from it: in `SMSLINK_SECRET_KEY` (containers, several workers sharing one database)
or in `<home>/secret.key`, created owner-only on first use.

The home, the key file and a SQLite database are trusted only when no other user can have
written them, by ssh's rule for `~/.ssh`: owned by the current user (or root) and writable by
nobody else. Otherwise another local user could plant their own key (every token sealed
with it is then theirs to read) or their own database (a connection whose base URL points at
them, so the token is sent to them).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from smslink.domain.errors import ConfigurationRefused, say
from smslink.store.location import smslink_home

KEY_ENV = "SMSLINK_SECRET_KEY"
KEY_FILE_NAME = "secret.key"

#: What a secret looks like on screen. Fixed, so it reveals neither the secret's length nor
#: any of its characters: Twilio's console shows none of the auth token either, and an
#: administrator tells connections apart by name and Account SID, not by token digits.
MASK = "********"


#: POSIX owners and modes mean nothing on Windows, where the user profile's ACL protects the
#: home; a flag rather than inline `os.name` tests so tests can take the Windows path.
_CHECK_POSIX_MODES = os.name != "nt"


class SecretError(ConfigurationRefused):
    """The key is missing, malformed, exposed, or not the one the secrets were sealed with."""


class UnsafePathError(SecretError):
    """The home, the key file or the SQLite database could have been written by another user.

    A SecretError because what it guards is the secrets: a key or a database planted by
    someone else gives them the auth tokens. `path` is the file or folder refused; the
    message says why and how to fix it.
    """

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


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
        self._raw: bytes | None = _raw(key) if key is not None else None
        self._home = home

    def derive(self, purpose: str) -> bytes:
        """A key for another purpose (signing the web face's session cookies), derived from
        this one with HMAC-SHA256: every process that shares the secret key (several
        services on one database) shares it too, and it reveals nothing of the key."""
        self._key()
        assert self._raw is not None
        return hmac.new(self._raw, b"smslink:" + purpose.encode(), hashlib.sha256).digest()

    def encrypt(self, plain: str) -> str:
        return self._key().encrypt(plain.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._key().decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as e:
            raise SecretError(
                say(
                    "the stored auth token cannot be decrypted with this key: "
                    "was SMSLINK_SECRET_KEY or secret.key changed?"
                )
            ) from e

    def _key(self) -> Fernet:
        if self._fernet is None:
            raw = _load_key(self._home)
            self._fernet, self._raw = _fernet(raw, "the key"), _raw(raw)
        return self._fernet


def _raw(key: str | bytes) -> bytes:
    return (key.encode() if isinstance(key, str) else key).strip()


def _fernet(key: str | bytes, where: str) -> Fernet:
    try:
        return Fernet(key.strip())
    except (ValueError, TypeError) as e:
        raise SecretError(
            f"{where} is not a valid Fernet key (32 url-safe base64-encoded bytes); "
            'make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from e


def _load_key(home: Path | None) -> bytes:
    """The key: `SMSLINK_SECRET_KEY`, else `<home>/secret.key` (created on first use)."""
    env = os.environ.get(KEY_ENV)
    if env:
        _fernet(env, KEY_ENV)  # a malformed key is named as coming from the environment
        return env.encode()
    if home is None:
        home = smslink_home()  # checked there
    else:
        check_home(home)
    path = home / KEY_FILE_NAME
    if not path.exists():
        _create_key_file(path)
    _check_private(path)
    raw = path.read_bytes()
    _fernet(raw, str(path))
    return raw


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
    """Refuse a key file others can read or write, or that another user owns, as ssh does
    for a private key: read by others it unseals every token; written (or planted) by others
    it seals new tokens with a key they know."""
    if not _CHECK_POSIX_MODES:
        return
    st = path.stat()
    _check_owner(
        path,
        st,
        "a key they wrote would let them read every auth token sealed with it; "
        "move it away and let smslink create a new one, then enter the auth tokens again "
        "(and rotate any token sealed with the old key at Twilio)",
        chown_ok=False,
    )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise UnsafePathError(
            path,
            f"{path} is accessible by other users (mode {mode:04o}); "
            f"run: chmod 600 {path} (and consider the key compromised if others could read it)",
        )


# --- Paths smslink trusts with secrets -------------------------------------------------------


def check_home(home: Path) -> None:
    """Refuse a home another user could have written to: it holds the key, and by default
    the database.

    ssh's rule for `~/.ssh`: a directory owned by the current user or root, writable by
    nobody else (not even a group: the sticky bit does not help, since others could still
    create `secret.key` before smslink does). Readable by others (0755) is accepted: the key
    file and the database are 0600 themselves, and smslink creates the home 0700.
    """
    if not _CHECK_POSIX_MODES:
        return
    st = home.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(
            home,
            f"{home} (the smslink home) is not a directory; "
            "move it away or set SMSLINK_HOME to a directory of your own",
        )
    _check_owner(
        home,
        st,
        "they could plant a secret.key or a database of their own there; "
        "set SMSLINK_HOME to a directory of your own",
    )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise UnsafePathError(
            home,
            f"{home} (the smslink home) is writable by other users (mode {mode:04o}), who "
            f"could plant a secret.key or a database of their own there; run: chmod 700 {home}",
        )


def check_private_file(path: Path, what: str) -> None:
    """Refuse a file (the SQLite database or its -wal, -shm, -journal files) that another
    user owns or that a group or everyone may write: its content could be theirs."""
    if not _CHECK_POSIX_MODES:
        return
    st = path.stat()
    _check_owner(path, st, "move it away and let smslink create a new one")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise UnsafePathError(
            path,
            f"{path} ({what}) is writable by other users (mode {mode:04o}); run: chmod 600 {path}",
        )


def check_folder(folder: Path, what: str) -> None:
    """Refuse a folder another user owns, or that others may write without the sticky bit:
    they could swap the file in it (rename theirs over it) between smslink's check and open.
    A sticky world-writable folder such as /tmp is accepted: there only the file's owner may
    rename or delete it, and a file others create first is refused by its owner."""
    if not _CHECK_POSIX_MODES:
        return
    st = folder.stat()
    _check_owner(folder, st, f"keep {what} in a folder of your own")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise UnsafePathError(
            folder,
            f"{folder} (the folder of {what}) is writable by other users (mode {mode:04o}), "
            f"who could swap the file; run: chmod go-w {folder}",
        )


def _check_owner(path: Path, st: os.stat_result, fix: str, *, chown_ok: bool = True) -> None:
    """ssh's owner rule: the current (effective) user or root, who can read everything
    anyway. Even root does not trust a file another user owns.

    `chown_ok` adds chown as the alternative fix; not for the key file, which nobody should
    adopt without knowing who wrote it."""
    if st.st_uid in (os.geteuid(), 0):
        return
    message = f"{path} is owned by another user ({_user_name(st.st_uid)}): {fix}"
    if chown_ok:
        message += f"; or, if it is yours, run: chown {_user_name(os.geteuid())} {path}"
    raise UnsafePathError(path, message)


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)
