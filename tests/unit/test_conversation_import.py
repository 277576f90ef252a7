"""The conversation core imports without gevent, websocket-client or Locust."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_without_io_libraries() -> None:
    code = (
        "import sys, loadtest.conversation as c; "
        "bad = [m for m in ('gevent', 'websocket', 'locust') if m in sys.modules]; "
        "assert not bad, bad; print(len(c.__all__))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10
