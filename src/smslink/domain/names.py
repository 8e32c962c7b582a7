"""Names people give connections and touchpoints: what they may contain, and why.

A name is typed in commands, shown in lists and in every run that used it, and kept in
the store's history. So it must be something a person can see and type: not empty, no
control characters (a name with ESC in it would steer the terminal of everyone who lists
it), no bidirectional overrides (which reorder what is shown), no spaces at either end
(invisible, and "Sale " would then differ from "Sale"), and short enough for the store.
"""

from __future__ import annotations

import unicodedata

from smslink.domain.errors import say

#: The store's column width for names.
MAX_NAME_CHARS = 200


def check_name(name: str, what: str = "name") -> str:
    """Return `name` unchanged when it is usable, else raise ValueError saying why (its
    argument a `Sentence`; `what` names the thing, ideally a Sentence too, e.g.
    `say("connection name")`, so a page can translate the whole message)."""
    if not name.strip():
        raise ValueError(say("the %(what)s is empty: give it a name, e.g. spring-sale", what=what))
    if name != name.strip():
        raise ValueError(
            say(
                "the %(what)s %(name)s has spaces at its start or end: remove them",
                what=what,
                name=repr(name.strip()),
            )
        )
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf")]
    if bad:
        shown = ", ".join(sorted({f"U+{ord(ch):04X}" for ch in bad}))
        raise ValueError(
            say(
                "the %(what)s contains control or formatting characters (%(shown)s): "
                "use letters, digits, spaces and punctuation only",
                what=what,
                shown=shown,
            )
        )
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(
            say(
                "the %(what)s is %(length)s characters long; the limit is %(limit)s",
                what=what,
                length=len(name),
                limit=MAX_NAME_CHARS,
            )
        )
    return name
