"""The layers hold: the command-line app loads no training code (``scicli train`` and
``scicli weights`` import it when they run), and every operator is registered by its own file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import scicli
from scicli.physics import OPERATORS

PHYSICS = Path(scicli.__file__).parent / "physics"


def test_the_app_imports_no_training_module() -> None:
    code = "import sys, scicli.cli.app; print(sorted(m for m in sys.modules if m.startswith('scicli.train')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_one_file_per_operator() -> None:
    files = {p.stem for p in PHYSICS.glob("*.py")} - {"__init__", "base", "masks"}
    modules = {OPERATORS.get(name).factory.__module__.rsplit(".", 1)[-1] for name in OPERATORS.names()}
    assert files == modules
