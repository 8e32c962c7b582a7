"""What every command shares: the console, the store, and turning errors into one clear line."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from smslink.secrets import SecretError
from smslink.store import AlreadyExists, InUse, NotFound, Store, open_store
from smslink.store.errors import StoreError

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

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        return super().render_str(visible(text), **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)

#: Exit codes: 0 success; 1 the run could not finish (connection refused, Twilio unreachable);
#: 2 bad input or configuration given on the command line; 130 interrupted (Ctrl-C).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(Text.assemble(("error:", "bold red"), " ", visible(message)))
    raise typer.Exit(code)


def command(*words: str) -> str:
    """A command line to suggest, each word shell-quoted as a user would have to type it
    (`smslink touchpoint preview 'Spring Sale' --input audience.csv`)."""
    return " ".join(["smslink", *(shlex.quote(str(w)) for w in words)])


@contextmanager
def store_session() -> Iterator[Store]:
    """The configured store; store errors become one clear line and exit code 2."""
    try:
        store = open_store()
    except (StoreError, SecretError) as error:  # SecretError: an unsafe home or database
        fail(str(error))
    except Exception as error:  # a bad SMSLINK_DATABASE_URL, an unreachable server
        fail(f"cannot open the database: {error}")
    try:
        yield store
    except (NotFound, AlreadyExists, InUse, SecretError) as error:
        fail(str(error))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        fail(f"the database ({store.url}) failed: {reason}", EXIT_FAILED)
    finally:
        store.close()


def print_fields(rows: list[tuple[str, str]]) -> None:
    """A record as bold labels beside their values (the `show` commands)."""
    grid = Table.grid(padding=(0, 2))
    for label, value in rows:
        grid.add_row(Text(label, style="bold"), value)
    console.print(grid)
