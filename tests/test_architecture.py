"""The layering rules of design.md, checked on the source: the engine, the document
model, the I/O and the restoration core never import Qt (so they stay testable and
usable without a display), and the app never imports torch (a training-only tool)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

QT_FREE = [
    *sorted((APP / "engine").rglob("*.py")),
    *sorted((APP / "io").rglob("*.py")),
    *sorted((APP / "restore").rglob("*.py")),
    *[APP / "canvas" / name for name in ("document.py", "tools.py", "patch.py", "gestures.py", "view.py", "compare.py")],
]
QT_FREE = [p for p in QT_FREE if p.name != "worker.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", QT_FREE, ids=lambda p: str(p.relative_to(APP)))
def test_model_and_engine_modules_do_not_import_qt(path):
    assert path.is_file()
    assert not imported_modules(path) & {"PySide6", "shiboken6", "PyQt5", "PyQt6"}


def test_app_never_imports_torch():
    offenders = [str(p.relative_to(APP)) for p in APP.rglob("*.py") if "torch" in imported_modules(p)]
    assert offenders == []
