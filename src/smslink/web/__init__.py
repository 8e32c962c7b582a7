"""The web face: `smslink serve` runs pages for administrators and marketers, and a REST
API, over the same application layer as the command line (see app.py)."""
