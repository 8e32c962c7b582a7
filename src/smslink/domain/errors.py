"""One tree of errors for everything smslink refuses or stops on purpose.

Every face (the command line, the web pages, the journey API, a worker) has to decide what
to do with an error: say "fix this input", "fix the connection", "try again later",
"resume it", or "the database failed". So the tree is grouped by that decision, not by the
module that raised it, and a face catches five classes instead of a list per command:

    SmslinkError
    ├── InvalidInput           what the caller gave cannot be used: change it (exit 2)
    ├── ConfigurationRefused   a setting, key or home is refused: fix the configuration
    ├── Busy                   someone else is working on it: try again later
    ├── Halted                 a run stopped and keeps its state: fix the cause, resume it
    └── StorageFailed          the database failed or cannot be used

What the user can do about an error travels with it as data (`Remedy`: an action and its
arguments, e.g. resume run 12; set connection "prod"'s concurrency to 20), and input
problems name the field they concern (`Problem`). Each face renders both in its own words:
the command line as a command to type, a page as a button or a message next to the field.
Nothing below the faces names a command-line flag or command.

Twilio's own failures (`smslink.twilio.errors`) are a separate tree, sorted by retry
meaning for the engine; they never cross the application layer unconverted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """What a user can do to get past an error; the arguments say to what."""

    RESUME_RUN = "resume_run"  # run_id; optionally output (write the results elsewhere)
    EXPORT_RESULTS = "export_results"  # run_id
    SEND_AGAIN = "send_again"  # run_id (the earlier send): send although it is a repeat
    OVERWRITE_OUTPUT = "overwrite_output"  # path: replace a file that is not results
    CHOOSE_OUTPUT = "choose_output"  # path: write the results to another file
    SET_ENCODING = "set_encoding"  # encoding: read the audience in this encoding
    UPDATE_CONNECTION = "update_connection"  # connection; optionally setting, value
    REMOVE_OPTOUT = "remove_optout"  # phone, sender
    MAP_FIELD = "map_field"  # placeholder: map it to an audience column


class Sentence(str):
    """A message a face can translate: as a `str` it is the English sentence, filled in;
    `key` is that sentence with `%(name)s` placeholders and `params` their values (which
    may be Sentences themselves). A page renders `key` in the user's language; the command
    line and files keep the English. Made with `say`, which the catalogue extraction looks
    for (babel.cfg), so every such sentence gets a German translation."""

    key: str
    params: Mapping[str, object]

    def __new__(cls, key: str, params: Mapping[str, object]) -> Sentence:
        text = key % {k: str(v) for k, v in params.items()} if params else key
        sentence = super().__new__(cls, text)
        sentence.key = key
        sentence.params = dict(params)
        return sentence


def say(key: str, /, **params: object) -> Sentence:
    """The sentence `key` with its values: `say("%(count)s placeholders", count=6)`."""
    return Sentence(key, params)


@dataclass(frozen=True, slots=True)
class Remedy:
    """One thing the user can do, as data: `Remedy(Action.RESUME_RUN, {"run_id": 12})`."""

    action: Action
    args: Mapping[str, str | int | float | None] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str | int | float | None:
        return self.args[key]


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one field of an input, in words for the person who typed it.

    `field` is the input's own field name (`from_number`, `mapping.FirstName`, `base_url`),
    never a flag or a form label: each face maps it to where the user typed it.
    """

    field: str
    message: str
    remedy: Remedy | None = None

    def __str__(self) -> str:
        return self.message


class SmslinkError(Exception):
    """Root of every error smslink raises on purpose. `remedy` says what the user can do,
    when there is something; `str()` is a complete sentence without it."""

    remedy: Remedy | None = None

    def __init__(self, message: str, *, remedy: Remedy | None = None) -> None:
        super().__init__(message)
        if remedy is not None:
            self.remedy = remedy


class InvalidInput(SmslinkError):
    """What the caller gave (a name, a setting, a message, an audience file, an output
    path) cannot be used as it is; `problems` names each field that must change."""

    def __init__(
        self,
        message: str | None = None,
        *,
        problems: Iterable[Problem] = (),
        remedy: Remedy | None = None,
    ) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if message is None:
            message = "; ".join(p.message for p in self.problems) or "invalid input"
        if remedy is None and len(self.problems) == 1:
            remedy = self.problems[0].remedy
        super().__init__(message, remedy=remedy)


class ConfigurationRefused(SmslinkError):
    """smslink's own configuration is refused: an unsafe home or key file, a key that does
    not open the stored tokens, a database written by a newer smslink."""


class Busy(SmslinkError):
    """Another process is working on the same thing right now: try again later."""


class Halted(SmslinkError):
    """A run stopped before it was done and keeps everything it had: fix what the message
    says (the connection, Twilio's availability, the results folder), then resume it."""


class StorageFailed(SmslinkError):
    """The database cannot be opened or failed during an operation."""
