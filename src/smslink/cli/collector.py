"""How often a command's process looks for garbage in reference cycles.

Python collects its young generation every 700 net allocations. A send makes and keeps
objects for every message (records, states, answers), and at 700 a 10,000-message send
ran ~300 collections and spent ~6% of its CPU in them; at 10,000 it runs ~15, at a tenth
of the cost (bench/RESULTS.md section 18). The price is that garbage in cycles waits
longer: a cycle that holds a large body (an exception's traceback keeping a request's
upload, say) is freed after up to 10,000 allocations rather than 700, so a long-running
web service could hold several times the memory at its peak. So commands that send
collect less often, and `serve`, which answers arbitrary requests for as long as it
runs, keeps Python's own rhythm.
"""

from __future__ import annotations

import gc

#: Python's thresholds as this process started with them.
PYTHON_THRESHOLDS = gc.get_threshold()
#: Net allocations between two collections of the young generation while sending.
SENDING_YOUNG_THRESHOLD = 10_000


def collect_for_sending() -> None:
    gc.set_threshold(SENDING_YOUNG_THRESHOLD)


def collect_for_serving() -> None:
    gc.set_threshold(*PYTHON_THRESHOLDS)
