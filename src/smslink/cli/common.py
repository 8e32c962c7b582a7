"""What every command shares: the consoles, the application, and errors as one clear line.

Every command module imports this one, and `smslink --help` imports every command module:
so the application, and Rich's tables, are imported where a command uses them, never here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from smslink.cli.render import describe
from smslink.domain.errors import ConfigurationRefused, InvalidInput, SmslinkError

if TYPE_CHECKING:
    from smslink.app import Smslink

#: Characters that steer a terminal rather than show something: C0 and C1 controls and DEL
#: (ESC starts sequences that clear the screen, retitle the window or fake output; C1 0x9B
#: is a one-byte CSI), and the bidirectional overrides that reorder what is shown.
_STEERING = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every terminal-steering character shown as an escape (`\\x1b`) instead
    of acting on the terminal. Line breaks and tabs stay: they cannot rewrite the screen."""
    return _STEERING.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class SafeConsole(Console):
    """A console on which nothing printed can steer the terminal or read as markup.

    Audience data, file names, Twilio's messages and names people chose all reach the
    screen; rather than trust every call site to clean them, every string on its way to
    the screen (prints, table cells, titles) passes `visible`, and markup is off, so a
    value like `[red]` prints as written. Styles are given as Text or `style=` instead.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(highlight=False, markup=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)

#: Exit codes: 0 success; 1 the run could not finish (connection refused, Twilio unreachable,
#: busy) or the database failed; 2 bad input or configuration; 130 interrupted (Ctrl-C).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(Text.assemble(("error:", "bold red"), " ", visible(message)))
    raise typer.Exit(code)


def exit_code(error: SmslinkError) -> int:
    """What the command line's exit code says about an error of each group."""
    from smslink.app import DatabaseUnavailable

    if isinstance(error, InvalidInput | ConfigurationRefused | DatabaseUnavailable):
        return EXIT_USAGE
    return EXIT_FAILED  # Busy, Halted, StorageFailed: the input was fine, the work was not


@contextmanager
def session() -> Iterator[Smslink]:
    """The application over the configured store; every error of the tree becomes one
    clear line (its problems and remedy in the command line's words) and its exit code."""
    from smslink.app import Config, open_app

    try:
        with open_app(Config.from_environment()) as app:
            yield app
    except SmslinkError as error:
        fail(describe(error), exit_code(error))


def print_fields(rows: list[tuple[str, str]]) -> None:
    """A record as bold labels beside their values (the `show` commands)."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    for label, value in rows:
        grid.add_row(Text(label, style="bold"), value)
    console.print(grid)
