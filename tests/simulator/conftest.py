"""Fixtures: a real simulator on a loopback port, with the official SDK pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import pytest
from receiver import Receiver
from simkit import FAST, Sim

from smslink.simulator import SimulatorConfig, run_in_thread


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Sim]]:
    """Factory: start a simulator with a given config; every one is stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def start(config: SimulatorConfig | None = None) -> Sim:
            return Sim(stack.enter_context(run_in_thread(config or SimulatorConfig())))

        yield start


@pytest.fixture
def sim(start_sim: Callable[..., Sim]) -> Sim:
    """A simulator with the default config."""
    return start_sim()


@pytest.fixture
def fast_sim(start_sim: Callable[..., Sim]) -> Sim:
    """A simulator whose messages are final within about 0.1 s."""
    return start_sim(FAST)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    """Factory: start a receiver (optionally failing its first answers); all stopped after."""
    started: list[Receiver] = []

    def start(answers: Iterable[int] = ()) -> Receiver:
        receiver = Receiver(answers)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
