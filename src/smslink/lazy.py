"""Names of a package imported the first time they are used (PEP 562).

A package that gathers its public names from heavy modules (the application, the
simulator) would otherwise load them all with the package: `smslink --help` would pay for
the store, the engine and aiohttp's server before printing a line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, whose names are in the modules
    `homes` gives for each: `__getattr__, __dir__ = lazy_names(__name__, _HOMES)`."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        setattr(module, name, value)  # once found, an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted([*vars(module), *homes])

    return __getattr__, __dir__
