"""What the store tests write: a connection, a touchpoint, runs and deliveries, built the
same way in every store test module (the fixtures are in conftest.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from smslink.domain.models import (
    Connection,
    Delivery,
    Progress,
    RunSnapshot,
    Stage,
    Touchpoint,
)
from smslink.store import Store

TOKEN = "9d2c5e1f0a7b4c3d8e6f1a2b3c4d5e6f"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def connection(name: str = "main", **overrides: object) -> Connection:
    fields: dict[str, object] = {
        "name": name,
        "account_sid": "AC" + "0" * 32,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
    }
    fields.update(overrides)
    return Connection(**fields)  # type: ignore[arg-type]


def touchpoint(name: str = "welcome", connection: str = "main") -> Touchpoint:
    return Touchpoint(
        name=name,
        connection=connection,
        message="Hi <FirstName>",
        phone_column="mobile",
        mapping={"FirstName": "first_name"},
    )


_OUTPUTS = itertools.count()


def new_run(store: Store, output_path: str | None = None) -> int:
    """A stored run; each gets its own output file (two unfinished runs may not share one)."""
    return store.runs.create_run(
        touchpoint="welcome",
        connection="main",
        input_path="in.csv",
        output_path=output_path or f"out-{next(_OUTPUTS)}.csv",
        snapshot=RunSnapshot("Hi <FirstName>", "mobile"),
    ).id


def deliveries(run_id: int, seqs: range, **overrides: object) -> list[Delivery]:
    """One PENDING delivery per seq, with a phone and a body derived from it."""
    return [
        Delivery(
            run_id=run_id,
            seq=i,
            row={"mobile": f"+1555000{i:04d}", "first_name": f"Zoë {i}"},
            to=f"+1555000{i:04d}",
            body=f"Hi Zoë {i}",
            segments=1,
            **overrides,  # type: ignore[arg-type]
        )
        for i in seqs
    ]


def tracking_run(store: Store, n: int = 3) -> int:
    """A run with `n` deliveries Twilio accepted (sids SM0, SM1, ...), being tracked."""
    store.catalogue.add_connection(connection())
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(n)), ["mobile"])
    store.deliveries.claim_pending(run_id, n, NOW)
    store.deliveries.save_progress(
        [
            Progress(run_id, i, Stage.TRACKING, twilio_status="queued", message_sid=f"SM{i}")
            for i in range(n)
        ]
    )
    return run_id
