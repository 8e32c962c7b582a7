"""Each command imports what it uses, and `--help` imports nothing heavy.

`smslink --help` is what a new user runs first, and every command pays for what the
command line imports before it starts: so help loads no store, engine, Twilio client, web
face or simulator server, and `send` loads no web face, job queue or password hashing.
Each check runs the commands in a fresh Python process, whose modules are the commands'
own (this one has imported everything the other tests use).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from typer.main import get_command

from smslink.cli import app
from tests.clikit import InProcessCli, Simulator, audience

#: Runs the commands given as JSON in argv[1] as the tests do (Typer's CliRunner), then
#: prints their exit codes and output, and every module imported by then.
_RUN_COMMANDS = """
import json, sys
from typer.testing import CliRunner
from smslink.cli import app
results = [CliRunner().invoke(app, args) for args in json.loads(sys.argv[1])]
print(json.dumps({
    "codes": [r.exit_code for r in results],
    "output": [r.output for r in results],
    "modules": sorted(sys.modules),
}))
"""

#: What no help needs: the layers below the application, the faces' frameworks, the
#: database and HTTP libraries, password hashing, and Rich's tables.
HEAVY_FOR_HELP = [
    "sqlalchemy",
    "aiohttp",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "procrastinate",
    "argon2",
    "phonenumbers",
    "rich.table",
    "smslink.store",
    "smslink.engine",
    "smslink.twilio",
    "smslink.audience",
    "smslink.jobs",
    "smslink.web",
    "smslink.simulator.server",
    "smslink.simulator.app",
]

#: What a send never needs (it does need the store, the engine and aiohttp's client).
UNUSED_BY_SEND = [
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "procrastinate",
    "argon2",
    "aiohttp.web",
    "smslink.web",
    "smslink.jobs",
    "smslink.simulator.server",
    "smslink.simulator.app",
    "smslink.app.users",
    "smslink.app.journeys",
]


def _run_fresh(commands: list[list[str]], cli: InProcessCli) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _RUN_COMMANDS, json.dumps(commands)],
        env=cli.env,
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def _loaded(modules: list[str], packages: list[str]) -> list[str]:
    """The modules of `packages` (each a module or a package, with its submodules) loaded."""
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def _command_paths() -> list[list[str]]:
    """Every command and group, as the words that name it (the root: none)."""
    paths: list[list[str]] = [[]]

    def walk(command: click.Command, words: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*words, name])
            walk(sub, [*words, name])

    walk(get_command(app), [])
    return paths


def test_help_of_every_command_imports_nothing_heavy(cli: InProcessCli) -> None:
    paths = _command_paths()
    assert ["send"] in paths and ["connection", "add"] in paths and ["serve"] in paths

    report = _run_fresh([[*words, "--help"] for words in paths], cli)

    assert report["codes"] == [0] * len(paths), report["output"]
    assert "Usage: smslink send" in report["output"][paths.index(["send"])]
    assert _loaded(report["modules"], HEAVY_FOR_HELP) == []


def test_version_imports_nothing_heavy(cli: InProcessCli) -> None:
    report = _run_fresh([["--version"]], cli)

    assert report["codes"] == [0]
    assert report["output"][0].startswith("smslink ")
    assert _loaded(report["modules"], HEAVY_FOR_HELP) == []


def test_send_imports_no_web_face_job_queue_or_password_hashing(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "audience.csv", 3)

    report = _run_fresh(
        [["send", "hello", "--input", str(source), "--output", str(tmp_path / "out.csv")]], cli
    )

    assert report["codes"] == [0], report["output"]
    assert "sqlalchemy" in report["modules"] and "smslink.engine" in report["modules"]
    assert _loaded(report["modules"], UNUSED_BY_SEND) == []
