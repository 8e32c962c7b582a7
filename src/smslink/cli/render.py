"""The command line's words for what the application says as data.

The layers below name input fields (`from_number`, `mapping.FirstName`) and remedies
(`Action.RESUME_RUN` with `run_id=12`); here they become the flags a user types and the
commands to run next. A web page renders the same data as form fields and buttons.
"""

from __future__ import annotations

import shlex

from smslink.domain.errors import Action, InvalidInput, Problem, Remedy, SmslinkError

#: The flag a user types for each input field, by command.
FLAGS: dict[str, str] = {
    "account_sid": "--account-sid",
    "auth_token": "the token ($TWILIO_AUTH_TOKEN or the prompt)",
    "from_number": "--from",
    "messaging_service_sid": "--messaging-service-sid",
    "api_key_sid": "--api-key-sid",
    "base_url": "--base-url",
    "callback_base_url": "--callback-base-url",
    "poll_interval_ms": "--poll-interval-ms",
    "poll_attempts": "--poll-attempts",
    "concurrency": "--concurrency",
    "region": "--region",
    "max_segments_per_second": "--max-segments-per-second",
    "request_timeout_s": "--request-timeout",
    "phone_column": "--phone",
    "message": "--message",
    "connection": "--connection",
    "sender": "--sender",
}


def command(*words: str | int) -> str:
    """A command line to suggest, each word shell-quoted as a user would have to type it
    (`smslink touchpoint preview 'Spring Sale' --input audience.csv`)."""
    return " ".join(["smslink", *(shlex.quote(str(w)) for w in words)])


def describe(error: SmslinkError) -> str:
    """The error as one line: its problems in the command line's words, then its remedy."""
    if isinstance(error, InvalidInput) and error.problems:
        text = "; ".join(problem(p) for p in error.problems)
    else:
        text = str(error)
        hint = remedy(error.remedy) if error.remedy else None
        if hint:
            text = f"{text}: {hint}"
    return text


def problem(p: Problem) -> str:
    """One problem with the flag it concerns, and what to type to fix it when known."""
    if p.field.startswith("mapping."):
        placeholder = p.field.removeprefix("mapping.")
        if p.remedy is not None and p.remedy.action is Action.MAP_FIELD:
            return f"{p.message}: add --map {_map_arg(placeholder)}"
        return p.message.replace(f"<{placeholder}> is mapped", f"--map {placeholder}=...")
    if p.field == "phone_column" and "not set" in p.message:
        return f"{p.message}: add --phone COLUMN"
    flag = FLAGS.get(p.field)
    if flag is None or p.field in ("name", "auth_token"):
        return p.message
    # "--from '+1x' is not a sender ...", but "--base-url: the base URL ..."
    joint = " " if p.message[:1] in "'\"0123456789-+" else ": "
    return f"{flag}{joint}{p.message}"


def remedy(r: Remedy) -> str | None:
    """What to type next, for the remedies the command line has a command for."""
    args = r.args
    match r.action:
        case Action.RESUME_RUN:
            words: list[str | int] = ["runs", "resume", str(args["run_id"])]
            if args.get("output"):
                words += ["--output", str(args["output"])]
            return command(*words)
        case Action.EXPORT_RESULTS:
            return command("runs", "export", str(args["run_id"]), "--output", "FILE.csv")
        case Action.SEND_AGAIN:
            return "send it with --again"
        case Action.OVERWRITE_OUTPUT:
            return "pass --overwrite"
        case Action.CHOOSE_OUTPUT:
            return "choose another --output"
        case Action.SET_ENCODING:
            encoding = args.get("encoding")
            return (
                f"pass --encoding {encoding}" if encoding else "pass its encoding with --encoding"
            )
        case Action.UPDATE_CONNECTION:
            words = ["connection", "update", str(args["connection"])]
            setting = args.get("setting")
            if setting:
                words += [FLAGS.get(str(setting), str(setting)), str(args.get("value") or "N")]
            return command(*words)
        case Action.REMOVE_OPTOUT:
            return command("optouts", "remove", str(args["phone"]), "--sender", str(args["sender"]))
        case Action.MAP_FIELD:
            return f"add --map {_map_arg(str(args['placeholder']))}"
    return None


def _map_arg(name: str) -> str:
    """The --map argument to suggest, quoted when the name has spaces."""
    return f'"{name}=COLUMN"' if " " in name else f"{name}=COLUMN"
