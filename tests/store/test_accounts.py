"""Users and API tokens in the store, on a real SQLite file and a real PostgreSQL schema:
names unique, the last enabled administrator kept (also when two change at once), sessions'
cut-off moved by what should end them, tokens found by hash until revoked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from smslink.domain.models import Role
from smslink.store import AlreadyExists, NotFound, Store, open_store
from smslink.store.accounts import LastAdministrator
from smslink.store.secrets import SecretBox

DAY_ONE = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
LATER = DAY_ONE + timedelta(hours=1)


def test_names_are_unique_and_the_clash_names_its_field(store: Store) -> None:
    store.accounts.add_user("ada", Role.ADMIN, "hash", now=DAY_ONE)

    with pytest.raises(AlreadyExists) as clash:
        store.accounts.add_user("ada", Role.MARKETER, "hash", now=DAY_ONE)

    assert [p.field for p in clash.value.problems] == ["name"]
    assert [u.name for u in store.accounts.list_users()] == ["ada"]


def test_the_last_enabled_administrator_cannot_be_demoted_or_disabled(store: Store) -> None:
    ada = store.accounts.add_user("ada", Role.ADMIN, "hash", now=DAY_ONE)
    max_ = store.accounts.add_user("max", Role.MARKETER, "hash", now=DAY_ONE)

    with pytest.raises(LastAdministrator) as demoted:
        store.accounts.update_user(ada.id, role=Role.MARKETER, now=LATER)
    with pytest.raises(LastAdministrator) as disabled:
        store.accounts.update_user(ada.id, disabled=True, locale="de", now=LATER)

    assert [p.field for p in demoted.value.problems] == ["role"]
    assert [p.field for p in disabled.value.problems] == ["disabled"]
    assert store.accounts.get_user(ada.id) == ada  # nothing changed, the locale neither
    # Anything else about them may change; so may the marketers.
    store.accounts.update_user(ada.id, role=Role.ADMIN, password_hash="new", now=LATER)
    store.accounts.update_user(max_.id, disabled=True, now=LATER)

    # A disabled administrator does not count: promoting the marketer lets ada step down
    # only while the marketer is enabled.
    store.accounts.update_user(max_.id, role=Role.ADMIN, now=LATER)
    with pytest.raises(LastAdministrator):
        store.accounts.update_user(ada.id, role=Role.MARKETER, now=LATER)
    store.accounts.update_user(max_.id, disabled=False, now=LATER)
    assert store.accounts.update_user(ada.id, role=Role.MARKETER, now=LATER).role is Role.MARKETER


def test_two_administrators_demoting_each_other_at_once_leave_one(url: str, key: bytes) -> None:
    with open_store(url, secret_box=SecretBox(key)) as store:
        ids = [store.accounts.add_user(n, Role.ADMIN, "hash", now=DAY_ONE).id for n in "ab"]
    stores = [open_store(url, secret_box=SecretBox(key)) for _ in ids]
    start = threading.Barrier(len(ids))
    refused: list[int] = []

    def demote(store: Store, user_id: int) -> None:
        start.wait()
        try:
            store.accounts.update_user(user_id, role=Role.MARKETER, now=LATER)
        except LastAdministrator:
            refused.append(user_id)

    threads = [threading.Thread(target=demote, args=pair) for pair in zip(stores, ids, strict=True)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        admins = [u for u in stores[0].accounts.list_users() if u.role is Role.ADMIN]
    finally:
        for s in stores:
            s.close()
    assert len(refused) == 1 and [u.id for u in admins] == refused


def test_what_ends_sessions_moves_the_cut_off_and_nothing_else_does(store: Store) -> None:
    store.accounts.add_user("ada", Role.ADMIN, "hash", now=DAY_ONE)
    max_ = store.accounts.add_user("max", Role.MARKETER, "hash", now=DAY_ONE)

    promoted = store.accounts.update_user(max_.id, role=Role.ADMIN, locale="de", now=LATER)
    assert promoted.password_changed_at == DAY_ONE and promoted.locale == "de"
    disabled = store.accounts.update_user(max_.id, disabled=True, now=LATER)
    assert disabled.password_changed_at == LATER
    reset_at = LATER + timedelta(hours=1)
    reset = store.accounts.update_user(max_.id, password_hash="new", now=reset_at)
    assert reset.password_changed_at == reset_at
    with pytest.raises(NotFound):
        store.accounts.update_user(999, disabled=True, now=LATER)


def test_a_token_is_found_by_its_hash_until_it_is_revoked(store: Store) -> None:
    ada = store.accounts.add_user("ada", Role.ADMIN, "hash", now=DAY_ONE)
    token = store.accounts.add_token(ada.id, "export", "f" * 64, "smslink_abcd", now=DAY_ONE)

    found = store.accounts.find_token("f" * 64)
    assert found is not None and found[0] == token and found[1].name == "ada"
    assert store.accounts.get_token(token.id) == token
    store.accounts.touch_token(token.id, now=LATER)
    assert store.accounts.get_token(token.id).last_used_at == LATER

    revoked = store.accounts.revoke_token(token.id, now=LATER)
    again = store.accounts.revoke_token(token.id, now=LATER + timedelta(days=1))

    assert revoked.revoked_at == again.revoked_at == LATER  # the first revocation stands
    assert store.accounts.find_token("f" * 64) is None
    assert store.accounts.list_tokens(ada.id) == [again]
    with pytest.raises(NotFound):
        store.accounts.get_token(999)
    with pytest.raises(NotFound):
        store.accounts.revoke_token(999, now=LATER)
