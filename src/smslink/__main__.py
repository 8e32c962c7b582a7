"""`python -m smslink`: the same as the `smslink` command."""

from smslink.cli import main

main()
