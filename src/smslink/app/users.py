"""People who sign in to the pages, and the API tokens they use from scripts.

Passwords are hashed with Argon2id (argon2-cffi's defaults, the OWASP recommendation); a
wrong password and an unknown name cost the same time, so the sign-in page does not tell
which names exist. API tokens are random (256 bits), shown once when created, and kept as
a SHA-256 (enough for a secret of that strength; no salt needed) with their first
characters to tell them apart. Disabling a user or resetting a password ends every session
issued before it (see `session_user`), and a disabled user's tokens are refused.

There is always an enabled administrator: `update` refuses to take the role of the last one
or to disable them (`LastAdministrator`, a problem of the field `role` or `disabled`).
Everyone holds their own tokens; an administrator may see and revoke anyone's (a leaked
token of someone on holiday), but creates tokens only for themselves, since whoever sees a
token can act as its user.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import available_timezones

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import ApiToken, Role, User
from smslink.domain.names import check_name
from smslink.store import NotFound, Store
from smslink.store.accounts import LastAdministrator

__all__ = ["MAX_PASSWORD_CHARS", "MIN_PASSWORD_CHARS", "TOKEN_PREFIX", "LastAdministrator", "Users"]

#: Shorter passwords are refused: NIST SP 800-63B asks for at least 8; 10 leaves room.
MIN_PASSWORD_CHARS = 10
#: Longer ones too: hashing an attacker's megabyte "password" would cost the server.
MAX_PASSWORD_CHARS = 256
#: API tokens start with this, so a secret scanner (or a person) can tell what leaked.
TOKEN_PREFIX = "smslink_"

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so that case takes as long as a wrong
    password. Hashed once per process, when the first `Users` is made rather than when
    this module is imported: a hash takes as long as a sign-in, and commands that never
    sign anyone in should not pay for it."""
    return _hasher.hash("not a password anyone has")


#: How stale an API token's "last used" may be (see `user_for_token`).
TOKEN_TOUCH_EVERY = timedelta(minutes=1)


class Users:
    """The users of one store."""

    def __init__(
        self, store: Store, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._accounts = store.accounts
        self._clock = clock
        _dummy_hash()  # now, so that no sign-in takes longer for paying for it

    def count(self) -> int:
        return self._accounts.count_users()

    def add(self, name: str, password: str, role: Role) -> User:
        """A new user; InvalidInput by field (name, password) when one cannot be used."""
        problems = _name_problems(name) + _password_problems(password)
        if problems:
            raise InvalidInput(problems=problems)
        return self._accounts.add_user(name, role, _hasher.hash(password), now=self._clock())

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the name and password match and the user is not disabled."""
        usable = len(password) <= MAX_PASSWORD_CHARS and _storable(password) and _storable(name)
        found = self._accounts.find_user(name) if usable else None
        if found is None:
            _verify(_dummy_hash(), password[:MAX_PASSWORD_CHARS] if usable else "")
            return None
        user, password_hash = found
        if not _verify(password_hash, password) or user.disabled:
            return None
        if _hasher.check_needs_rehash(password_hash):  # parameters raised since it was set
            self._accounts.update_user(
                user.id,
                password_hash=_hasher.hash(password),
                now=user.password_changed_at or self._clock(),
            )
        return user

    def session_user(self, user_id: int, issued_at: datetime) -> User | None:
        """The user a session cookie issued at `issued_at` stands for, or None when the
        user is gone, disabled, or changed their password since."""
        try:
            user = self._accounts.get_user(user_id)
        except NotFound:
            return None
        changed = user.password_changed_at
        if user.disabled or (changed is not None and issued_at < changed):
            return None
        return user

    def get(self, user_id: int) -> User:
        return self._accounts.get_user(user_id)

    def list(self) -> list[User]:
        return self._accounts.list_users()

    def update(
        self,
        user_id: int,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        locale: str | None = None,
        time_zone: str | None = None,
    ) -> User:
        """Change a user; a new password or disabling ends their sessions. NotFound for
        no such user; LastAdministrator when no enabled administrator would be left."""
        if password is not None:
            problems = _password_problems(password)
            if problems:
                raise InvalidInput(problems=problems)
        if time_zone and time_zone not in _time_zones():
            raise InvalidInput(
                problems=[
                    Problem(
                        "time_zone",
                        say(
                            "%(zone)s is not a time zone: choose one such as Europe/Berlin, "
                            "or leave it empty for UTC",
                            zone=repr(time_zone[:64]),
                        ),
                    )
                ]
            )
        return self._accounts.update_user(
            user_id,
            role=role,
            disabled=disabled,
            password_hash=_hasher.hash(password) if password is not None else None,
            locale=locale,
            time_zone=time_zone,
            now=self._clock(),
        )

    # -- API tokens ---------------------------------------------------------------------

    def create_token(self, user_id: int, name: str) -> tuple[ApiToken, str]:
        """A new token for the user: its record, and the token itself, shown only now."""
        problems = _name_problems(name, say("token name"))
        if problems:
            raise InvalidInput(problems=problems)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = self._accounts.add_token(
            user_id, name, _token_hash(token), token[: len(TOKEN_PREFIX) + 4], now=self._clock()
        )
        return record, token

    def token_user(self, token: str) -> User | None:
        """The (enabled) user a bearer token stands for, or None; notes its last use."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        found = self._accounts.find_token(_token_hash(token))
        if found is None or found[1].disabled:
            return None
        record, user = found
        now = self._clock()
        # "Last used" to the minute: a journey calling many times a second would otherwise
        # pay a write transaction per request for a date nobody reads to the second.
        if record.last_used_at is None or now - record.last_used_at >= TOKEN_TOUCH_EVERY:
            self._accounts.touch_token(record.id, now=now)
        return user

    def tokens(self, user_id: int | None = None) -> builtins.list[ApiToken]:
        """The tokens of `user_id` (every user's when None), revoked ones included, oldest
        first."""
        return self._accounts.list_tokens(user_id)

    def token(self, token_id: int, *, owner: int | None = None) -> ApiToken:
        """One token's record; NotFound when there is none, or when `owner` is given and
        it is someone else's (which is not told apart from none at all)."""
        record = self._accounts.get_token(token_id)
        if owner is not None and record.user_id != owner:
            raise NotFound(say("no API token %(token)s", token=str(token_id)))
        return record

    def revoke_token(self, token_id: int, *, owner: int | None = None) -> ApiToken:
        """Revoke a token at once (revoking it again changes nothing); with `owner`, only
        that user's (NotFound for anyone else's)."""
        self.token(token_id, owner=owner)
        return self._accounts.revoke_token(token_id, now=self._clock())


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@cache
def _time_zones() -> frozenset[str]:
    """The IANA time zone names this machine knows (tzdata)."""
    return frozenset(available_timezones())


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _storable(text: str) -> bool:
    """Whether `text` can be written as UTF-8 (no lone surrogates, which JSON can carry)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _name_problems(name: str, what: str | None = None) -> list[Problem]:
    what = what or say("user name")
    try:
        check_name(name, what)
    except ValueError as error:
        return [Problem("name", error.args[0])]
    if not _storable(name):
        return [
            Problem("name", say("the %(what)s contains characters that are not text", what=what))
        ]
    return []


def _password_problems(password: str) -> list[Problem]:
    if not _storable(password):
        return [Problem("password", say("the password contains characters that are not text"))]
    if len(password) < MIN_PASSWORD_CHARS:
        return [
            Problem(
                "password",
                say(
                    "the password has %(length)s characters; use at least %(minimum)s (a few "
                    "words make a good one)",
                    length=len(password),
                    minimum=MIN_PASSWORD_CHARS,
                ),
            )
        ]
    if len(password) > MAX_PASSWORD_CHARS:
        return [
            Problem(
                "password",
                say("the password is longer than %(limit)s", limit=MAX_PASSWORD_CHARS),
            )
        ]
    return []
