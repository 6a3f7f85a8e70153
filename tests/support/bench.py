"""Scripts of ``bench/`` imported by the tests that share their checks (one implementation
for the script and the test). ``bench/`` is on mypy's path, not on ``sys.path``."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.support.shared import PROJECT_ROOT


def bench_module(name: str) -> ModuleType:
    """``bench/{name}.py`` as module ``name``, loaded once (bench scripts import each other by
    their bare names, so the name is kept)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
