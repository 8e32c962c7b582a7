"""Names people give connections and touchpoints: what they may contain, and why.

A name is typed in commands, shown in lists and in every run that used it, and kept in
the store's history. So it must be something a person can see and type: not empty, no
control characters (a name with ESC in it would steer the terminal of everyone who lists
it), no bidirectional overrides (which reorder what is shown), no spaces at either end
(invisible, and "Sale " would then differ from "Sale"), and short enough for the store.
"""

from __future__ import annotations

import unicodedata

#: The store's column width for names.
MAX_NAME_CHARS = 200


def check_name(name: str, what: str = "name") -> str:
    """Return `name` unchanged when it is usable, else raise ValueError saying why."""
    if not name.strip():
        raise ValueError(f"the {what} is empty: give it a name, e.g. spring-sale")
    if name != name.strip():
        raise ValueError(f"the {what} {name.strip()!r} has spaces at its start or end: remove them")
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf")]
    if bad:
        shown = ", ".join(sorted({f"U+{ord(ch):04X}" for ch in bad}))
        raise ValueError(
            f"the {what} contains control or formatting characters ({shown}): "
            "use letters, digits, spaces and punctuation only"
        )
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(
            f"the {what} is {len(name)} characters long; the limit is {MAX_NAME_CHARS}"
        )
    return name
