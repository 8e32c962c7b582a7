"""What makes a touchpoint usable, checked before it is stored, by field.

A marketer writes a message (at most five placeholders, within Twilio's length even with
one-letter values) and maps the phone number and each placeholder to an audience column;
every problem comes back at once, each naming its field (`name`, `message`,
`phone_column`, `mapping.<Placeholder>`) for the face to show where it was typed.
"""

from __future__ import annotations

from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.models import Touchpoint
from smslink.domain.names import check_name
from smslink.domain.template import TemplateError, mapping_problems, parse_template


def checked_touchpoint(touchpoint: Touchpoint) -> Touchpoint:
    """The touchpoint when it can be stored, else InvalidInput with every problem."""
    problems = touchpoint_problems(touchpoint)
    if problems:
        raise InvalidInput(problems=problems)
    return touchpoint


def touchpoint_problems(t: Touchpoint) -> list[Problem]:
    problems: list[Problem] = []
    try:
        check_name(t.name, say("touchpoint name"))
    except ValueError as error:
        problems.append(Problem("name", error.args[0]))
    try:
        template = parse_template(t.message)
    except TemplateError as error:
        return [*problems, *error.problems]
    return [*problems, *mapping_problems(template, t.phone_column, t.mapping)]
