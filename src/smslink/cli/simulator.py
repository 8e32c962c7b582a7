"""`smslink simulator`: the Twilio-compatible simulator as a server, for tests and trying
out smslink (or any Twilio client) without an account."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated

import typer

from smslink.cli.common import fail
from smslink.simulator.config import DEFAULT_AUTH_TOKEN, SimulatorConfig


def simulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    auth_token: Annotated[
        str, typer.Option(help="The token every account accepts.")
    ] = DEFAULT_AUTH_TOKEN,
    latency_ms: Annotated[float, typer.Option(help="Delay before every answer.")] = 0.0,
    undelivered_share: Annotated[float, typer.Option(help="Share ending undelivered.")] = 0.0,
    failed_share: Annotated[float, typer.Option(help="Share ending failed.")] = 0.0,
    stuck_share: Annotated[float, typer.Option(help="Share staying 'sent' forever.")] = 0.0,
    queued_s: Annotated[float, typer.Option(help="Seconds queued.")] = 0.2,
    sending_s: Annotated[float, typer.Option(help="Seconds sending.")] = 0.2,
    sent_s: Annotated[float, typer.Option(help="Seconds sent before final.")] = 0.5,
    owned_number: Annotated[
        list[str] | None, typer.Option(help="A From number the account owns (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of recipient outcomes and fault draws.")] = 0,
    latency_jitter_ms: Annotated[
        float, typer.Option(help="Mean of an exponential extra delay per answer.")
    ] = 0.0,
    concurrency_limit: Annotated[
        int | None, typer.Option(help="API requests in progress above this get 429/20429.")
    ] = None,
    retry_after_s: Annotated[
        float | None, typer.Option(help="Retry-After on 429s (absent by default).")
    ] = None,
    server_error_share: Annotated[
        float, typer.Option(help="Share of API requests answered 500/503, doing nothing.")
    ] = 0.0,
    reset_before_share: Annotated[
        float, typer.Option(help="Share of API requests reset before any work.")
    ] = 0.0,
    reset_after_share: Annotated[
        float, typer.Option(help="Share of creates reset after the message is stored.")
    ] = 0.0,
    delay_after_create_share: Annotated[
        float, typer.Option(help="Share of creates answered late (see --delay-after-create-s).")
    ] = 0.0,
    delay_after_create_s: Annotated[
        float, typer.Option(help="Extra seconds such a create's answer is held.")
    ] = SimulatorConfig().delay_after_create_s,
    sender_mps: Annotated[
        float | None,
        typer.Option(help="Segments per second each sender sends; more wait 'queued'."),
    ] = None,
    sender_queue_s: Annotated[
        float, typer.Option(help="Seconds of backlog a sender's queue holds, then 21611.")
    ] = SimulatorConfig().sender_queue_s,
    callback_disorder: Annotated[
        bool, typer.Option(help="Deliver status callbacks late and out of order.")
    ] = False,
    callback_retries: Annotated[
        int, typer.Option(help="Retries of a status callback that failed (error or non-2xx).")
    ] = 0,
    callback_drop_share: Annotated[
        float, typer.Option(help="Share of status callbacks never delivered.")
    ] = 0.0,
) -> None:
    """Serve a Twilio-compatible API on loopback until Ctrl-C (for tests and trying out)."""
    # Every option but --port and --owned-number is named after its SimulatorConfig field.
    options = locals()
    config = {f.name: options[f.name] for f in fields(SimulatorConfig) if f.name in options}
    if owned_number:
        config["owned_numbers"] = frozenset(owned_number)
    try:  # one clear line for an impossible setting, before any port is opened
        SimulatorConfig(**config)
    except ValueError as error:
        fail(str(error))
    from smslink.simulator import main as serve_simulator  # only this command serves

    serve_simulator(port=port, **config)
