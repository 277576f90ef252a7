"""scripts/azure-load-test.sh: syntax, usage and the az commands it would run.

The Azure CLI is not installed here, so the script is exercised through ``--dry-run`` (which
prints each command instead of running it) and its refusals.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "azure-load-test.sh"
COMPONENT = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.App/containerApps/agent"
)


def _script(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path or "/usr/bin:/bin", "HOME": "/tmp"}
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=30)  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "alt-config.yaml"
    path.write_text("# generated\nversion: v0.1\ntestId: voice-ci\ntestType: Locust\n")
    return path


def test_syntax_and_shellcheck() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(SCRIPT)], check=True)


def test_help_lists_the_steps() -> None:
    done = _script("--help")
    assert done.returncode == 0
    for step in (
        "az load create",
        "az load test create|update",
        "az load test-run create",
        "az load test server-metric add",
        "az load test-run download-files",
    ):
        assert step in done.stdout


def test_dry_run_prints_the_az_commands_in_order(config: Path) -> None:
    done = _script("--config", str(config), "--resource", "alt-voice", "--resource-group",
                   "rg", "--location", "eastus", "--run-id", "run-1", "--reports", "out",
                   "--server-metric", COMPONENT, "Microsoft.App/containerApps",
                   "CpuPercentage", "Average", "--dry-run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    commands = [shlex.split(line[2:]) for line in done.stdout.splitlines() if line.startswith("+ ")]
    where = ["--load-test-resource", "alt-voice", "--resource-group", "rg"]
    assert commands[0] == ["az", "load", "create", "--name", "alt-voice", "--resource-group",
                           "rg", "--location", "eastus"]  # fmt: skip
    assert commands[1] == ["az", "load", "test", "create", "--test-id", "voice-ci", *where,
                           "--load-test-config-file", str(config)]  # fmt: skip
    assert commands[2][:4] == ["az", "load", "test", "app-component"]
    assert "--app-component-type" in commands[2] and "Microsoft.App/containerApps" in commands[2]
    server = commands[3]
    assert server[:5] == ["az", "load", "test", "server-metric", "add"]
    assert f"{COMPONENT}/providers/microsoft.insights/metricdefinitions/CpuPercentage" in server
    assert commands[4][:4] == ["az", "load", "test-run", "create"]
    assert "--test-run-id" in commands[4] and "run-1" in commands[4]
    assert commands[5] == ["mkdir", "-p", "out/run-1"]
    assert commands[6][:4] == ["az", "load", "test-run", "download-files"]
    assert {"--input", "--log", "--result", "--force"} <= set(commands[6])
    assert commands[6][commands[6].index("--path") + 1] == "out/run-1"


def test_missing_az_is_one_line(config: Path, tmp_path: Path) -> None:
    tools = tmp_path / "bin"  # the script's other tools, but no az even where it is installed
    tools.mkdir()
    for tool in ("sed", "head", "tr", "date"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    done = _script("--config", str(config), "--resource", "r", "--resource-group", "g",
                   path=str(tools))  # fmt: skip
    assert done.returncode == 127
    assert done.stderr.strip().splitlines() == [
        "azure-load-test: error: the Azure CLI (az) is not installed; see "
        "https://learn.microsoft.com/cli/azure/install-azure-cli (or use --dry-run)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--config, --resource and --resource-group are required"),
        (["--config", "nope.yaml", "--resource", "r", "--resource-group", "g"], "no such file"),
        (["--bogus"], "unknown argument '--bogus'"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: list[str], message: str) -> None:
    done = _script(*args)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert message in line
