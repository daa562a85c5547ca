"""The layer contracts in pyproject.toml ([tool.importlinter]) hold: audit.stats imports nothing above it; and no
module under audit/ is longer than MAX_LINES unless its docstring says why it must be one piece."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e '.[test]'")
    run = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                          "sys.exit(lint_imports_command())"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


MAX_LINES = 500
ONE_PIECE = "One piece:"  # a docstring line starting with this says why the module must stay whole


def _length_and_reason(path: Path) -> tuple[int, str]:
    """The module's line count and the text after ``One piece:`` in its docstring ("" without one)."""
    text = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text)) or ""
    reasons = [line.strip()[len(ONE_PIECE):].strip() for line in doc.splitlines()
               if line.strip().startswith(ONE_PIECE)]
    return len(text.splitlines()), next((r for r in reasons if r), "")


def test_no_module_is_too_long_unless_its_docstring_says_why():
    """A module over MAX_LINES lines is split along its concerns, or its docstring has a line
    ``One piece: <why it must be one piece>``."""
    package = REPO / "audit"
    too_long = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        lines, reason = _length_and_reason(path)
        if lines > MAX_LINES and not reason:
            too_long.append(f"audit/{name}: {lines} lines")
    assert too_long == [], (f"modules over {MAX_LINES} lines: split them, or say in the docstring why each must be "
                            f"one piece (a line starting with {ONE_PIECE!r}): " + "; ".join(too_long))



def test_no_module_imports_a_private_name_from_another_package():
    """What one package shares with another has a public name: ``from ..core.run import _created`` in a task is
    a helper the core forgot to publish (issue #17)."""
    package = REPO / "audit"
    crossings = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        home = ".".join(parts[:-1])  # the importing module's package
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            source = ".".join(parts[:len(parts) - node.level] + node.module.split(".")) if node.level else node.module
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if private and source.startswith("audit") and not source.startswith(home):
                crossings.append(f"{path.relative_to(REPO)}: {source} {', '.join(private)}")
    assert crossings == []


def test_every_import_of_an_audit_name_resolves():
    """Imports inside functions run only when their branch does; a name that moved (``read_front_matter`` left
    ``audit.core.cards``) must not wait for that branch to fail."""
    import importlib

    missing = []
    for path in sorted((REPO / "audit").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or (node.level == 0 and not (node.module or "").startswith("audit")):
                continue
            module = (".".join(parts[:len(parts) - node.level] + ([node.module] if node.module else []))
                      if node.level else node.module)
            imported = importlib.import_module(module)
            for alias in node.names:
                if alias.name != "*" and not hasattr(imported, alias.name):
                    try:
                        importlib.import_module(f"{module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{path.relative_to(REPO)}:{node.lineno}: {module} has no {alias.name}")
    assert missing == []
