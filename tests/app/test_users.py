"""Users and API tokens through the front door: passwords checked and hashed, sessions ended
by a reset or a disabling, the last administrator kept, tokens shown once and owned."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from smslink.app import NotFound, Smslink
from smslink.app.users import TOKEN_PREFIX, LastAdministrator
from smslink.domain.errors import InvalidInput
from smslink.domain.models import Role

PASSWORD = "correct horse battery"


def test_a_user_signs_in_with_their_password_only(smslink: Smslink) -> None:
    ada = smslink.users.add("ada", PASSWORD, Role.ADMIN)

    assert smslink.users.authenticate("ada", PASSWORD) == ada
    assert smslink.users.authenticate("ada", "wrong password") is None
    assert smslink.users.authenticate("nobody", PASSWORD) is None
    assert smslink.users.authenticate("ada", "\ud800" * 12) is None  # not text: no error


@pytest.mark.parametrize(
    ("name", "password", "field"),
    [
        ("mia", "short", "password"),
        ("mia", "x" * 257, "password"),
        ("mia", "not text \ud800 at all", "password"),
        (" mia", PASSWORD, "name"),
        ("mia\x1b", PASSWORD, "name"),
        ("mia\ud800", PASSWORD, "name"),
    ],
)
def test_a_name_or_password_that_cannot_be_used_is_a_problem_of_its_field(
    smslink: Smslink, name: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        smslink.users.add(name, password, Role.MARKETER)

    assert [p.field for p in refused.value.problems] == [field]
    assert smslink.users.count() == 0


def test_a_reset_or_a_disabling_ends_the_sessions_issued_before(smslink: Smslink) -> None:
    ada = smslink.users.add("ada", PASSWORD, Role.ADMIN)
    max_ = smslink.users.add("max", PASSWORD, Role.MARKETER)
    issued = datetime.now(UTC)
    assert smslink.users.session_user(max_.id, issued) == max_

    smslink.users.update(max_.id, role=Role.ADMIN)  # a role change keeps the session
    assert smslink.users.session_user(max_.id, issued) is not None
    smslink.users.update(max_.id, disabled=True)
    assert smslink.users.session_user(max_.id, datetime.now(UTC) + timedelta(seconds=1)) is None
    assert smslink.users.authenticate("max", PASSWORD) is None

    smslink.users.update(max_.id, disabled=False, password="a new passphrase")
    assert smslink.users.session_user(max_.id, issued) is None  # issued before the reset
    assert smslink.users.authenticate("max", "a new passphrase") is not None
    assert smslink.users.session_user(ada.id, issued) == ada


def test_the_last_administrator_is_kept_and_the_refusal_names_the_field(
    smslink: Smslink,
) -> None:
    ada = smslink.users.add("ada", PASSWORD, Role.ADMIN)

    with pytest.raises(LastAdministrator) as refused:
        smslink.users.update(ada.id, disabled=True)

    assert isinstance(refused.value, InvalidInput)
    assert [p.field for p in refused.value.problems] == ["disabled"]
    assert smslink.users.authenticate("ada", PASSWORD) == ada
    with pytest.raises(InvalidInput):
        smslink.users.update(ada.id, password="short")


def test_a_token_is_shown_once_kept_as_a_hash_and_refused_when_revoked(
    smslink: Smslink,
) -> None:
    max_ = smslink.users.add("max", PASSWORD, Role.MARKETER)

    record, token = smslink.users.create_token(max_.id, "export")

    assert token.startswith(TOKEN_PREFIX) and record.prefix == token[: len(TOKEN_PREFIX) + 4]
    assert token not in repr(record)
    stored = smslink._store.accounts.find_token(hashlib.sha256(token.encode()).hexdigest())
    assert stored is not None and stored[0].id == record.id
    assert smslink.users.token_user(token) == max_
    assert smslink.users.tokens(max_.id)[0].last_used_at is not None
    assert smslink.users.token_user(token + "x") is None
    assert smslink.users.token_user("not ours") is None

    smslink.users.revoke_token(record.id)

    assert smslink.users.token_user(token) is None


def test_a_disabled_users_tokens_are_refused(smslink: Smslink) -> None:
    smslink.users.add("ada", PASSWORD, Role.ADMIN)
    max_ = smslink.users.add("max", PASSWORD, Role.MARKETER)
    _, token = smslink.users.create_token(max_.id, "export")

    smslink.users.update(max_.id, disabled=True)

    assert smslink.users.token_user(token) is None


def test_a_token_is_revoked_by_its_owner_only_when_an_owner_is_given(smslink: Smslink) -> None:
    ada = smslink.users.add("ada", PASSWORD, Role.ADMIN)
    max_ = smslink.users.add("max", PASSWORD, Role.MARKETER)
    admins, _ = smslink.users.create_token(ada.id, "mine")

    with pytest.raises(NotFound):
        smslink.users.revoke_token(admins.id, owner=max_.id)
    with pytest.raises(NotFound):
        smslink.users.token(admins.id, owner=max_.id)

    assert smslink.users.token(admins.id, owner=ada.id) == admins
    assert smslink.users.revoke_token(admins.id).revoked_at is not None  # no owner: anyone's


def test_a_token_name_is_required(smslink: Smslink) -> None:
    max_ = smslink.users.add("max", PASSWORD, Role.MARKETER)

    with pytest.raises(InvalidInput) as refused:
        smslink.users.create_token(max_.id, "  ")

    assert [p.field for p in refused.value.problems] == ["name"]
    assert smslink.users.tokens(max_.id) == []
