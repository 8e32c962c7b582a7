"""Message templates: the ``<Placeholder>`` grammar, rendering, and mapping checks.

A marketer writes one message and smslink personalises it per recipient, as the original
connector did: a field name in angle brackets is replaced by that recipient's value.

Grammar
-------
A placeholder is ``<`` + a name + ``>``. The name

- starts with a letter (any Unicode letter, so ``<Prénom>`` works) or an underscore;
- continues with letters, digits, ``_``, ``-`` and ``.``;
- may contain single spaces between words: ``<First Name>`` is a placeholder, but
  ``< b>``, ``<b >`` and ``<First  Name>`` (two spaces) are not.

Names are case-sensitive: ``<firstname>`` and ``<FirstName>`` are different placeholders.
A message may use at most five distinct placeholders (a placeholder may repeat).

Everything else is plain text and is sent unchanged: ``a < b``, ``<3``, ``<>``, ``<<``,
an unclosed ``<``, ``<2 for 1>``. Rendering is a single pass over the message: a value that
itself contains ``<Other>`` is inserted literally and never expanded again, so audience
data cannot inject other fields into a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from smslink.domain.errors import Action, InvalidInput, Problem, Remedy, Sentence, say
from smslink.domain.models import MAX_BODY_CHARS, MAX_PLACEHOLDERS

#: `[^\W\d]` is "a word character that is not a digit": a letter or underscore. Numeric
#: characters that are not decimal digits (e.g. "²") are filtered out in `_is_name`.
_PLACEHOLDER = re.compile(r"<([^\W\d][\w.\-]*(?: [\w.\-]+)*)>")


class TemplateError(InvalidInput, ValueError):
    """A message or its field mapping cannot be used; the problems say what to change."""


class MissingValue(TemplateError):
    """A recipient has no value for a placeholder, so their message cannot be personalised."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no value for <{name}>: fill it in or leave this record out")
        self.name = name


@dataclass(frozen=True)
class Template:
    """A parsed message: its text and the distinct placeholder names, in order of first use."""

    text: str
    placeholders: tuple[str, ...]

    def render(self, values: Mapping[str, str]) -> str:
        """Substitute each placeholder with its value, in one pass.

        A missing, empty or whitespace-only value raises `MissingValue` rather than sending
        "Hello ," to a customer.
        """

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _is_name(name):
                return match.group(0)
            value = values.get(name)
            if value is None or not value.strip():
                raise MissingValue(name)
            return value

        return _PLACEHOLDER.sub(substitute, self.text)


def parse_template(text: str) -> Template:
    """Parse a message, rejecting ones that could never be sent as configured."""
    if not text or not text.strip():
        raise _bad_message(say("the message is empty: write the text to send"))
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if _is_name(name) and name not in names:
            names.append(name)
    shortest = len(_PLACEHOLDER.sub(lambda m: "x" if _is_name(m.group(1)) else m.group(0), text))
    if shortest > MAX_BODY_CHARS:
        raise _bad_message(
            say(
                "the message is %(length)s characters even with one-letter values; Twilio's "
                "limit is %(limit)s characters per message: shorten it",
                length=shortest,
                limit=MAX_BODY_CHARS,
            )
        )
    if len(names) > MAX_PLACEHOLDERS:
        listed = ", ".join(f"<{n}>" for n in names)
        raise _bad_message(
            say(
                "the message has %(count)s placeholders (%(listed)s); at most %(limit)s are "
                "allowed: remove %(extra)s",
                count=len(names),
                listed=listed,
                limit=MAX_PLACEHOLDERS,
                extra=len(names) - MAX_PLACEHOLDERS,
            )
        )
    return Template(text, tuple(names))


def _bad_message(message: Sentence) -> TemplateError:
    return TemplateError(problems=[Problem("message", message)])


def check_mapping(template: Template, phone_column: str, mapping: Mapping[str, str]) -> None:
    """Raise TemplateError with every problem of the mapping (see `mapping_problems`)."""
    problems = mapping_problems(template, phone_column, mapping)
    if problems:
        raise TemplateError(problems=problems)


def mapping_problems(
    template: Template, phone_column: str, mapping: Mapping[str, str]
) -> list[Problem]:
    """Every problem with the phone column and the placeholders' columns, by field
    (`phone_column`, `mapping.<Placeholder>`), reported together so that a marketer fixes
    the whole mapping in one go instead of one error per attempt."""
    problems: list[Problem] = []
    if not phone_column or not phone_column.strip():
        problems.append(Problem("phone_column", say("the phone number column is not set")))
    for name in template.placeholders:
        column = mapping.get(name)
        remedy = Remedy(Action.MAP_FIELD, {"placeholder": name})
        if column is None:
            problems.append(
                Problem(f"mapping.{name}", say("<%(name)s> is not mapped", name=name), remedy)
            )
        elif not column.strip():
            problems.append(
                Problem(
                    f"mapping.{name}",
                    say("<%(name)s> is mapped to an empty column name", name=name),
                    remedy,
                )
            )
    for name in mapping:
        if name in template.placeholders:
            continue
        same_but_case = [p for p in template.placeholders if p.casefold() == name.casefold()]
        if same_but_case:
            message = say(
                "<%(name)s> is mapped, but it is not in the message (did you mean "
                "<%(similar)s>? names are case-sensitive): remove it or fix the name",
                name=name,
                similar=same_but_case[0],
            )
        else:
            message = say(
                "<%(name)s> is mapped, but it is not in the message: remove it or fix the name",
                name=name,
            )
        problems.append(Problem(f"mapping.{name}", message))
    return problems


def _is_name(name: str) -> bool:
    """The grammar's first-character rule, which the regex can only approximate."""
    return name[0].isalpha() or name[0] == "_"
