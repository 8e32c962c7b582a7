"""Suite-wide set-up that must hold before any test starts a child process or a command."""

from __future__ import annotations

import os
import signal

# A shell starting the suite in the background (`make test &`, nohup, some CI runners) sets
# SIGINT to "ignore", and an ignored signal stays ignored in every child: the tests that
# press Ctrl-C on `smslink send` or the simulator would then see it do nothing. A handler of
# our own is reset to the default in each child at exec, so Ctrl-C works there again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The CLI tests run `smslink` in this process (tests/cli), each command with COLUMNS from its
# own environment, as a new process would read it. Rich fixes a console's width for good
# when the console is made, at import, if COLUMNS is set then, and pytest-xdist's workers
# have COLUMNS=80 (as does a shell that exports it): the CLI's consoles would wrap every
# line at 80 whatever the command's environment says. Made without it, they size
# themselves from the environment each time they print.
_terminal = {name: os.environ.pop(name) for name in ("COLUMNS", "LINES") if name in os.environ}
try:
    import smslink.cli  # noqa: F401  (its consoles, made now)
except Exception:  # src/ mid-change: the tests that import it report why
    pass
finally:
    os.environ.update(_terminal)
