"""Package the chart and push it to an OCI registry, with Helm's own engine (no helm binary).

``python -m tools.helm_chart package --out dist`` writes ``dist/voice-loadtest-<version>.tgz``
(``helm package``'s layout: ``.helmignore`` honoured, Chart.yaml's version in the name) and lints
the archive with ``helm lint --strict`` for the default values; it refuses to overwrite an
existing archive of that version whose content differs (a published version never changes).
``python -m tools.helm_chart push --registry oci://HOST/PATH ARCHIVE`` uploads it, logged in with
Helm's registry configuration (``helm registry login``) or ``HELM_REGISTRY_USERNAME`` /
``HELM_REGISTRY_PASSWORD``.

Exit codes: 0 done, 1 the archive fails lint or the push failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CHART", "lint_archive", "main", "package", "push"]

CHART = Path("helm/voice-loadtest")


def lint_archive(archive: Path) -> list[str]:
    """Problems ``helm lint --strict`` finds in the packaged chart (empty: clean)."""
    import helm_python

    with tempfile.TemporaryDirectory(prefix="helm-package-") as scratch:
        helm_python.expand(scratch, archive)
        (chart,) = Path(scratch).iterdir()
        report = helm_python.lint(chart, strict=True)
    problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return problems + [e for e in report["errors"] if not any(e in p for p in problems)]


def package(chart: Path, out: Path) -> Path:
    """``chart`` as ``out/<name>-<version>.tgz``; an existing archive of the same version is
    kept when its content is the same and refused (ValueError) when it differs."""
    import helm_python

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="helm-package-") as scratch:
        made = Path(helm_python.package(chart, destination=scratch))
        target = out / made.name
        if target.exists() and helm_python.digest(target) != helm_python.digest(made):
            with helm_python.Chart.load(target) as old, helm_python.Chart.load(made) as new:
                same = old.templates == new.templates and old.values == new.values
                same = same and old.files == new.files and old.schema == new.schema
            if not same:
                raise ValueError(
                    f"{target} exists with other content: a chart version never changes once "
                    "built; raise `version` in Chart.yaml (and add a CHANGELOG.md entry)"
                )
        shutil.move(str(made), target)
    return target


def push(archive: Path, registry: str) -> dict[str, Any]:
    """Upload ``archive`` to ``registry`` (``oci://host/path``)."""
    import helm_python

    client = helm_python.RegistryClient()
    user, password = (
        os.environ.get("HELM_REGISTRY_USERNAME"),
        os.environ.get("HELM_REGISTRY_PASSWORD"),
    )
    try:
        if user and password:
            client.login(urlsplit(registry).netloc, user, password)
        return helm_python.push(archive, registry, client=client)
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.helm_chart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("package", help="package and lint the chart")
    pack.add_argument("--chart", type=Path, default=CHART)
    pack.add_argument("--out", type=Path, default=Path("dist"))
    send = sub.add_parser("push", help="push a packaged chart to an OCI registry")
    send.add_argument("--registry", required=True, help="oci://HOST/PATH")
    send.add_argument("archive", type=Path)
    args = parser.parse_args(argv)
    import helm_python

    if args.command == "package":
        try:
            archive = package(args.chart, args.out)
        except (ValueError, helm_python.HelmError) as exc:
            print(f"helm-package: {exc}", file=sys.stderr)
            return 2
        problems = lint_archive(archive)
        for problem in problems:
            print(f"helm-package: {archive}: {problem}", file=sys.stderr)
        print(f"helm-package: {archive} ({'lint FAILED' if problems else 'lint clean'})")
        return 1 if problems else 0
    if not args.registry.startswith("oci://") or not urlsplit(args.registry).netloc:
        print(f"helm-push: REGISTRY={args.registry!r}: expected oci://HOST/PATH", file=sys.stderr)
        return 2
    if not args.archive.is_file():
        print(
            f"helm-push: {args.archive}: no such archive (run `make helm-package`)", file=sys.stderr
        )
        return 2
    try:
        pushed = push(args.archive, args.registry)
    except helm_python.HelmError as exc:
        print(f"helm-push: {exc}", file=sys.stderr)
        return 1
    print(f"helm-push: {args.archive.name} -> {pushed.get('ref', args.registry)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
