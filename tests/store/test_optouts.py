"""Opt-outs in the store, on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

from smslink.domain.models import OptOut
from smslink.store import Store, open_store
from smslink.store.secrets import SecretBox

SENDER = "+15005550006"
SERVICE = "MG" + "a" * 32
PHONE = "+12125550101"
DAY_ONE = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _optout(phone: str = PHONE, sender: str = SENDER, **overrides: object) -> OptOut:
    fields: dict[str, object] = {
        "sender": sender,
        "phone": phone,
        "created_at": DAY_ONE,
        "run_id": 7,
        "message": "Attempt to send to unsubscribed recipient",
    }
    fields.update(overrides)
    return OptOut(**fields)  # type: ignore[arg-type]


def test_add_is_idempotent_and_keeps_the_first_sighting(store: Store):
    first = _optout()
    assert store.catalogue.add_optout(first) is True
    later = _optout(created_at=DAY_ONE + timedelta(days=3), run_id=9, message="again")
    assert store.catalogue.add_optout(later) is False
    assert store.catalogue.get_optout(SENDER, PHONE) == first
    assert store.catalogue.list_optouts() == [first]


def test_an_optout_belongs_to_one_sender(store: Store):
    store.catalogue.add_optout(_optout())
    assert store.catalogue.get_optout(SERVICE, PHONE) is None
    assert store.catalogue.load_optouts(SERVICE) == {}
    store.catalogue.add_optout(_optout(sender=SERVICE))
    assert set(store.catalogue.load_optouts(SENDER)) == {PHONE}
    assert set(store.catalogue.load_optouts(SERVICE)) == {PHONE}


def test_load_returns_one_senders_optouts_by_phone(store: Store):
    phones = [f"+1212555{i:04d}" for i in range(50)]
    for phone in phones:
        store.catalogue.add_optout(_optout(phone))
    store.catalogue.add_optout(_optout("+442079460123", SERVICE))
    loaded = store.catalogue.load_optouts(SENDER)
    assert set(loaded) == set(phones)
    assert loaded[phones[3]] == _optout(phones[3])


def test_times_come_back_as_the_same_instant_in_utc(store: Store):
    cet = datetime(2026, 11, 26, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    store.catalogue.add_optout(_optout(created_at=cet, run_id=None, message=None))
    got = store.catalogue.get_optout(SENDER, PHONE)
    assert got is not None
    assert got.created_at == cet and got.created_at.tzinfo is UTC
    assert (got.run_id, got.source, got.message) == (None, "twilio", None)


def test_list_orders_by_sender_then_first_seen_and_filters(store: Store):
    b = _optout("+12125550102", created_at=DAY_ONE)
    a = _optout("+12125550101", created_at=DAY_ONE + timedelta(hours=1))
    s = _optout("+12125550101", SERVICE)
    for o in (a, s, b):
        store.catalogue.add_optout(o)
    assert store.catalogue.list_optouts() == [b, a, s]  # "+1..." sorts before "MG..."
    assert store.catalogue.list_optouts(SERVICE) == [s]
    assert store.catalogue.list_optouts("+19999999999") == []


def test_remove_one_sender_or_every_sender(store: Store):
    store.catalogue.add_optout(_optout())
    store.catalogue.add_optout(_optout(sender=SERVICE))
    store.catalogue.add_optout(_optout(sender="12345"))
    store.catalogue.add_optout(_optout("+12125550199"))

    assert store.catalogue.remove_optouts(PHONE, SERVICE) == 1
    assert store.catalogue.get_optout(SERVICE, PHONE) is None
    assert store.catalogue.remove_optouts(PHONE, SERVICE) == 0
    assert (
        store.catalogue.remove_optouts(PHONE) == 2
    )  # the rest of this phone's, whatever the sender
    assert store.catalogue.remove_optouts(PHONE) == 0
    assert [o.phone for o in store.catalogue.list_optouts()] == ["+12125550199"]
    # Removed means forgotten: a new 21610 is recorded afresh.
    assert store.catalogue.add_optout(_optout(created_at=DAY_ONE + timedelta(days=1))) is True


def test_concurrent_adds_of_one_optout_record_it_once(url: str, key: bytes):
    stores = [open_store(url, secret_box=SecretBox(key)) for _ in range(4)]
    news: list[bool] = []
    start = threading.Barrier(len(stores))

    def add(i: int) -> None:
        start.wait()
        news.append(stores[i].catalogue.add_optout(_optout(run_id=i)))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(news) == [False, False, False, True]
        assert len(stores[0].catalogue.list_optouts()) == 1
    finally:
        for s in stores:
            s.close()
