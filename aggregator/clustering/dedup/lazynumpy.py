"""numpy for the dedup core, imported on first use rather than when the core is.

The service imports the clustering stage whatever its mode; in exact mode (no model) nothing
of numpy runs, and importing it cost the service's main process ≈ 12 MB. Each attribute is
kept once looked up, so later uses cost what a module attribute does.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name`` until an attribute of it is first needed."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(importlib.import_module(self._name), attribute)
        setattr(self, attribute, value)
        return value


np = LazyModule("numpy")
