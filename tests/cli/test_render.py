"""The command line's words for the application's data: fields become flags, remedies
become commands to type, every word shell-quoted."""

from __future__ import annotations

import pytest

from smslink.cli.render import command, describe, problem, remedy
from smslink.domain.errors import Action, Halted, InvalidInput, Problem, Remedy


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (Problem("from_number", "'+1x' is not a sender"), "--from '+1x' is not a sender"),
        (Problem("base_url", "the base URL is empty"), "--base-url: the base URL is empty"),
        (Problem("name", "the connection name is empty"), "the connection name is empty"),
        (
            Problem("mapping.First Name", "<First Name> is not mapped", Remedy(Action.MAP_FIELD)),
            '<First Name> is not mapped: add --map "First Name=COLUMN"',
        ),
        (
            Problem("phone_column", "the phone number column is not set"),
            "the phone number column is not set: add --phone COLUMN",
        ),
    ],
)
def test_a_problem_names_the_flag_the_user_typed(given: Problem, said: str) -> None:
    assert problem(given) == said


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (Remedy(Action.RESUME_RUN, {"run_id": 12}), "smslink runs resume 12"),
        (
            Remedy(Action.UPDATE_CONNECTION, {"connection": "Spring Sale"}),
            "smslink connection update 'Spring Sale'",
        ),
        (
            Remedy(
                Action.UPDATE_CONNECTION,
                {"connection": "prod", "setting": "max_segments_per_second"},
            ),
            "smslink connection update prod --max-segments-per-second N",
        ),
        (
            Remedy(Action.REMOVE_OPTOUT, {"phone": "+12125550101", "sender": "My Shop"}),
            "smslink optouts remove +12125550101 --sender 'My Shop'",
        ),
        (Remedy(Action.SET_ENCODING, {"encoding": "cp1252"}), "pass --encoding cp1252"),
        (Remedy(Action.SEND_AGAIN, {"run_id": 3}), "send it with --again"),
    ],
)
def test_a_remedy_becomes_the_command_to_type(given: Remedy, said: str) -> None:
    assert remedy(given) == said


def test_describe_joins_problems_or_appends_the_remedy() -> None:
    two = InvalidInput(problems=[Problem("concurrency", "0 requests"), Problem("region", "bad")])
    halted = Halted("Twilio refused", remedy=Remedy(Action.RESUME_RUN, {"run_id": 4}))

    assert describe(two) == "--concurrency 0 requests; --region: bad"
    assert describe(halted) == "Twilio refused: smslink runs resume 4"
    assert command("touchpoint", "preview", "a b", "--input", "x;y.csv") == (
        "smslink touchpoint preview 'a b' --input 'x;y.csv'"
    )
