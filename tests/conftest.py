"""Suite-wide set-up that must hold before any test starts a child process."""

from __future__ import annotations

import signal

# A shell starting the suite in the background (`make test &`, nohup, some CI runners) sets
# SIGINT to "ignore", and an ignored signal stays ignored in every child: the tests that
# press Ctrl-C on `smslink send` or the simulator would then see it do nothing. A handler of
# our own is reset to the default in each child at exec, so Ctrl-C works there again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
