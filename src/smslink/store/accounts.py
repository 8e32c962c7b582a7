"""Who may sign in, and the API tokens they hold.

Only hashes are kept: a password's Argon2id string (computed by the application layer, which
owns the hashing policy) and an API token's SHA-256, so a copied database opens no door. A
user's `password_changed_at` lets the pages reject a session issued before a reset or a
disabling without a sessions table.

There is always an enabled administrator once there is one: a change that would take the
last one's role or disable them is refused (`LastAdministrator`), checked under a write lock
with the change itself, so two administrators demoting each other at once cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import ApiToken, Role, User
from smslink.store.database import Database
from smslink.store.errors import AlreadyExists, NotFound, StoreError
from smslink.store.schema import api_tokens, users

#: Serialises the changes that could leave no enabled administrator.
_ADMINS_LOCK = "smslink:administrators"


class LastAdministrator(StoreError, InvalidInput):
    """The change would leave no enabled administrator, and nobody could manage users or
    connections any more; `problems` names the field (role, disabled)."""


class Accounts:
    """Users (with their password hashes) and their API tokens (as hashes)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._engine = db.engine

    # -- users ------------------------------------------------------------------------

    def count_users(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar() or 0)

    def add_user(self, name: str, role: Role, password_hash: str, *, now: datetime) -> User:
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    insert(users).values(
                        name=name,
                        role=role.value,
                        password_hash=password_hash,
                        disabled=False,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
        except IntegrityError as e:
            message = say("a user named %(name)s already exists", name=repr(name))
            raise AlreadyExists(message, problems=[Problem("name", message)]) from e
        key = result.inserted_primary_key
        assert key is not None
        return self.get_user(int(key[0]))

    def get_user(self, user_id: int) -> User:
        with self._engine.connect() as conn:
            row = conn.execute(_USER_BY_ID, {"user_id": user_id}).first()
        if row is None:
            raise NotFound(say("no user %(user)s", user=str(user_id)))
        return _to_user(row)

    def find_user(self, name: str) -> tuple[User, str] | None:
        """The user called `name` with their password hash, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else (_to_user(row), row.password_hash)

    def list_users(self) -> list[User]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [_to_user(r) for r in rows]

    def update_user(
        self,
        user_id: int,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
        locale: str | None = None,
        time_zone: str | None = None,
        now: datetime,
    ) -> User:
        """Change the fields given. A new password or disabling also moves
        `password_changed_at`, which ends every session issued before it. LastAdministrator
        when the change would leave no enabled administrator (nothing is changed then)."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = role.value
        if disabled is not None:
            values["disabled"] = disabled
            values["password_changed_at"] = now
        if password_hash is not None:
            values["password_hash"] = password_hash
            values["password_changed_at"] = now
        if locale is not None:
            values["locale"] = locale or None
        if time_zone is not None:
            values["time_zone"] = time_zone or None
        demotes = (role is not None and role is not Role.ADMIN) or disabled is True
        if values:
            with self._engine.begin() as conn:
                if demotes:  # PostgreSQL: an advisory lock; SQLite: the write lock at once
                    self._db.hold_write_lock(conn, _ADMINS_LOCK)
                result = conn.execute(update(users).where(users.c.id == user_id).values(values))
                if result.rowcount == 0:
                    raise NotFound(say("no user %(user)s", user=str(user_id)))
                if demotes and _enabled_admins(conn) == 0:  # rolled back with the raise
                    field = "disabled" if disabled else "role"
                    message = say(
                        "no enabled administrator would be left: make another user an "
                        "administrator first"
                    )
                    raise LastAdministrator(message, problems=[Problem(field, message)])
        return self.get_user(user_id)

    # -- API tokens ---------------------------------------------------------------------

    def add_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, *, now: datetime
    ) -> ApiToken:
        with self._engine.begin() as conn:
            result = conn.execute(
                insert(api_tokens).values(
                    user_id=user_id,
                    name=name,
                    token_hash=token_hash,
                    prefix=prefix,
                    created_at=now,
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return self._token(int(key[0]))

    def find_token(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The live (not revoked) token with this hash and its user, or None. Asked on
        every API request: both statements are built once, read over one connection."""
        with self._engine.connect() as conn:
            row = conn.execute(_LIVE_TOKEN, {"token_hash": token_hash}).first()
            if row is None:
                return None
            user = conn.execute(_USER_BY_ID, {"user_id": row.user_id}).first()
        if user is None:
            raise NotFound(say("no user %(user)s", user=str(row.user_id)))
        return _to_token(row), _to_user(user)

    def touch_token(self, token_id: int, *, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now)
            )

    def list_tokens(self, user_id: int | None = None) -> list[ApiToken]:
        stmt = select(api_tokens).order_by(api_tokens.c.id)
        if user_id is not None:
            stmt = stmt.where(api_tokens.c.user_id == user_id)
        with self._engine.connect() as conn:
            return [_to_token(r) for r in conn.execute(stmt).all()]

    def revoke_token(self, token_id: int, *, now: datetime) -> ApiToken:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        if result.rowcount == 0:
            self._token(token_id)  # NotFound when there is no such token at all
        return self._token(token_id)

    def get_token(self, token_id: int) -> ApiToken:
        """The token's record (revoked or not); NotFound when there is none."""
        return self._token(token_id)

    def _token(self, token_id: int) -> ApiToken:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(say("no API token %(token)s", token=str(token_id)))
        return _to_token(row)


def _enabled_admins(conn: Connection) -> int:
    stmt = (
        select(func.count())
        .select_from(users)
        .where(users.c.role == Role.ADMIN.value, users.c.disabled.is_(False))
    )
    return int(conn.execute(stmt).scalar() or 0)


_LIVE_TOKEN = select(api_tokens).where(
    api_tokens.c.token_hash == bindparam("token_hash"), api_tokens.c.revoked_at.is_(None)
)
_USER_BY_ID = select(users).where(users.c.id == bindparam("user_id"))


def _to_user(r: Row[Any]) -> User:
    return User(
        id=r.id,
        name=r.name,
        role=Role(r.role),
        disabled=bool(r.disabled),
        created_at=r.created_at,
        password_changed_at=r.password_changed_at,
        locale=r.locale,
        time_zone=r.time_zone,
    )


def _to_token(r: Row[Any]) -> ApiToken:
    return ApiToken(
        id=r.id,
        user_id=r.user_id,
        name=r.name,
        prefix=r.prefix,
        created_at=r.created_at,
        last_used_at=r.last_used_at,
        revoked_at=r.revoked_at,
    )
