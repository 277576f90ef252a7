"""The tree tells the architecture: the runtime package stands alone, and the docs that map
the code name only what exists."""

from __future__ import annotations

import ast

from tests.conftest import REPO_ROOT


def _imported_tops(source: str) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def test_the_runtime_package_imports_nothing_from_the_build_tooling() -> None:
    """tools/ and bench/ are not installed: an import of them from loadtest/ would work in a
    clone and break in the image."""
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(tops & {"tools", "bench"})
        for path in sorted((REPO_ROOT / "loadtest").rglob("*.py"))
        if (tops := _imported_tops(path.read_text())) & {"tools", "bench"}
    }
    assert offenders == {}


def test_import_scan_sees_lazy_and_dotted_imports() -> None:
    source = "def f():\n    from tools.alerts import x\nimport bench.cli\nfrom . import tools\n"
    assert _imported_tops(source) == {"tools", "bench"}
