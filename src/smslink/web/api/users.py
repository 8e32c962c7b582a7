"""The REST API for users (administrators) and API tokens (everyone, their own).

Passwords and tokens are write-only: a password goes in and never comes out, and a token
appears once, in the answer that created it; afterwards only its first characters
(`prefix`) tell it apart. An administrator sees and revokes anyone's tokens but creates
tokens only for themselves: whoever sees a token can act as its user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from smslink.domain.models import ApiToken, Role, User
from smslink.web.api.common import (
    Id,
    Secret,
    Text,
    administrator,
    api_router,
    errors,
    marketer,
    smslink,
)
from smslink.web.session import Forbidden

router = api_router("users")

Admin = Annotated[User, Depends(administrator)]
Anyone = Annotated[User, Depends(marketer)]


class UserOut(BaseModel):
    """Someone who signs in or holds API tokens (never their password)."""

    id: int
    name: str
    role: Role
    disabled: bool = Field(description="A disabled user cannot sign in; their tokens fail.")
    created_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            role=user.role,
            disabled=user.disabled,
            created_at=user.created_at,
        )


class UserIn(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    role: Role
    password: Secret = Field(description="Write-only; at least 10 characters.")


class UserChanges(BaseModel):
    """What to change; omitted fields stay as they are. Disabling a user or setting a new
    password ends their sessions. Taking the role of the last enabled administrator, or
    disabling them, is refused."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    password: Secret | None = Field(None, description="Write-only: a new password.")


class TokenOut(BaseModel):
    """An API token as it may be shown: its name and first characters."""

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell it apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool = Field(description="Not revoked.")

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            user_id=token.user_id,
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
            active=token.revoked_at is None,
        )


class TokenCreated(TokenOut):
    """A new token, with the token itself: shown in this answer only, never again."""

    token: str = Field(description="Send it as `Authorization: Bearer <token>`.")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(
        min_length=1, max_length=200, description="What it is for, e.g. nightly export."
    )


@router.get("/users", summary="List the users")
def list_users(request: Request, _: Admin) -> list[UserOut]:
    return [UserOut.of(user) for user in smslink(request).users.list()]


@router.post("/users", status_code=201, summary="Add a user", responses=errors(409))
def add_user(request: Request, _: Admin, body: UserIn) -> UserOut:
    user = smslink(request).users.add(body.name, body.password.get_secret_value(), body.role)
    return UserOut.of(user)


@router.patch(
    "/users/{user_id:text}",
    summary="Change a user",
    description="Role, disabled, password: only what is given changes.",
    responses=errors(404),
)
def change_user(request: Request, user_id: Id, _: Admin, body: UserChanges) -> UserOut:
    password = body.password.get_secret_value() if body.password is not None else None
    users = smslink(request).users
    users.get(user_id)  # 404 before any password is hashed
    return UserOut.of(
        users.update(user_id, role=body.role, disabled=body.disabled, password=password)
    )


@router.get(
    "/tokens",
    summary="List API tokens",
    description="Your own tokens, revoked ones included; an administrator may ask for "
    "another user's with `user_id`.",
    responses=errors(404),
)
def list_tokens(
    request: Request,
    caller: Anyone,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> list[TokenOut]:
    users = smslink(request).users
    if user_id is not None and user_id != caller.id:
        if not caller.is_admin:
            raise Forbidden()
        users.get(user_id)  # 404 for no such user
    return [TokenOut.of(t) for t in users.tokens(caller.id if user_id is None else user_id)]


@router.post(
    "/tokens",
    status_code=201,
    summary="Create an API token",
    description="For yourself. The answer holds the token: the only time it is shown.",
)
def create_token(request: Request, caller: Anyone, body: TokenIn) -> TokenCreated:
    record, token = smslink(request).users.create_token(caller.id, body.name)
    return TokenCreated(**TokenOut.of(record).model_dump(), token=token)


@router.delete(
    "/tokens/{token_id:text}",
    summary="Revoke an API token",
    description="Your own, or (administrators) anyone's; it stops working at once.",
    responses=errors(404),
)
def revoke_token(request: Request, token_id: Id, caller: Anyone) -> TokenOut:
    owner = None if caller.is_admin else caller.id  # someone else's: 404, as for none
    return TokenOut.of(smslink(request).users.revoke_token(token_id, owner=owner))
