"""What every command shares: the console, the store, and turning errors into one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from smslink.secrets import SecretError
from smslink.store import AlreadyExists, InUse, NotFound, Store, open_store
from smslink.store.errors import StoreError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

#: Exit codes: 0 success; 1 the run could not finish (connection refused, Twilio unreachable);
#: 2 bad input or configuration given on the command line; 130 interrupted (Ctrl-C).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def store_session() -> Iterator[Store]:
    """The configured store; store errors become one clear line and exit code 2."""
    try:
        store = open_store()
    except StoreError as error:
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
        grid.add_row(f"[bold]{label}[/]", value)
    console.print(grid)
