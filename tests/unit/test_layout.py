"""The tree tells the architecture: the runtime package stands alone, its subpackages depend
on each other only as docs/architecture.md says, and the docs that map the code name only
what exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "loadtest"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
README = REPO_ROOT / "README.md"

ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "compat_env": {"errors"},
    "settings": {"compat_env", "errors"},
    "audio": {"errors"},
    "protocols": {"audio", "errors", "settings"},
    "conversation": {"audio", "protocols", "metrics", "errors"},
    "metrics": {"errors"},
    "runtime": {
        "audio",
        "compat_env",
        "conversation",
        "errors",
        "metrics",
        "procutil",
        "protocols",
        "settings",
        "storage",
    },
    "agent_sim": {"audio", "protocols", "errors"},
    "storage": {"audio", "errors"},
    "alt": {"audio", "conversation", "metrics", "settings", "errors"},
}
"""Subpackage (or top-level module) → the parts of ``loadtest`` it may import; the module map
of docs/architecture.md in code. Wiring modules (cli, locustfile, procutil) may import any."""


def _imports(source: str) -> set[str]:
    """Dotted module names imported anywhere in ``source`` (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_the_runtime_package_imports_nothing_from_the_build_tooling() -> None:
    """tools/ and bench/ are not installed: an import of them from loadtest/ would work in a
    clone and break in the image."""
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(tops)
        for path in sorted(PACKAGE.rglob("*.py"))
        if (tops := {n.split(".")[0] for n in _imports(path.read_text())} & {"tools", "bench"})
    }
    assert offenders == {}


def test_subpackages_import_only_what_the_module_map_allows() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        part = _part(path)
        for name in _imports(path.read_text()):
            if name.startswith("loadtest.") and name.split(".")[1] != part:
                found.setdefault(part, set()).add(name.split(".")[1])
    extra = {
        part: sorted(parts - ALLOWED[part])
        for part, parts in found.items()
        if part in ALLOWED and parts - ALLOWED[part]
    }
    assert extra == {}, "update ALLOWED here and the module map in docs/architecture.md"
    documented = {part for part in ALLOWED if part not in {"errors", "compat_env", "settings"}}
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == documented


def test_import_scan_sees_lazy_and_dotted_imports() -> None:
    source = "def f():\n    from tools.alerts import x\nimport bench.cli\nfrom . import tools\n"
    assert _imports(source) == {"tools.alerts", "bench.cli"}


# ------------------------------------------------------------------ docs that map the code

_REPO_PATH = re.compile(  # a templated path (test_protocols_<name>.py) is not one
    r"(?<![\w/.-])((?:loadtest|tools|bench|tests|docker|helm|k8s|docs)/[\w./-]*\w)(?![\w/<-])"
)
_PACKAGE_PATH = re.compile(
    r"(?<![\w/.-])((?:runtime|conversation|metrics|protocols|audio|agent_sim|storage|alt)/[\w/]+\.py)"
)
_SYMBOLS = re.compile(r"`((?:[\w/]+/)?\w+\.py): ([\w.]+)`")


def _paths(text: str) -> set[str]:
    paths = set(_REPO_PATH.findall(text))
    paths |= {f"loadtest/{p}" for p in _PACKAGE_PATH.findall(text)}
    return paths


def test_every_path_architecture_md_names_exists() -> None:
    paths = _paths(ARCHITECTURE.read_text())
    assert len([p for p in paths if p.startswith("loadtest/")]) >= 20
    missing = sorted(p for p in paths if not (REPO_ROOT / p).exists())
    assert missing == []


def test_every_symbol_architecture_md_names_is_defined_where_it_says() -> None:
    checked = 0
    for module, dotted in _SYMBOLS.findall(ARCHITECTURE.read_text()):
        path = REPO_ROOT / (module if module.startswith("loadtest/") else f"loadtest/{module}")
        source = path.read_text()
        for name in dotted.split("."):
            assert re.search(rf"(def|class) {name}\b|^{name} = ", source, re.M), (module, name)
            checked += 1
    assert checked >= 5


def test_the_path_scan_reads_both_spellings() -> None:
    text = "see `runtime/caller.py: CallDriver` and loadtest/metrics/slo.py, tools/generate.py."
    assert _paths(text) == {
        "loadtest/runtime/caller.py", "loadtest/metrics/slo.py", "tools/generate.py",
    }  # fmt: skip


# ------------------------------------------------------------------ README: the front door


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links(page: Path) -> list[tuple[Path, str]]:
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        found.append(((page.parent / file).resolve() if file else page, anchor))
    return found


def test_readme_is_a_front_door() -> None:
    assert len(README.read_text().splitlines()) <= 250


def test_every_docs_page_is_one_click_from_the_readme() -> None:
    linked = {path for path, _ in _links(README)}
    pages = set((REPO_ROOT / "docs").glob("*.md"))
    assert pages - linked == set()


@pytest.mark.parametrize(
    "page", [README, *sorted((REPO_ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for path, anchor in _links(page):
        if not path.exists():
            broken.append(str(path))
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(f"{path.name}#{anchor}")
    assert broken == []


def test_anchor_rule_follows_github() -> None:
    assert _anchor("Summary JSON (stable keys)") == "summary-json-stable-keys"
    assert _anchor("Where a worker's CPU goes") == "where-a-workers-cpu-goes"
    assert (
        _anchor("`voice-loadtest run`: a distributed run") == "voice-loadtest-run-a-distributed-run"
    )
