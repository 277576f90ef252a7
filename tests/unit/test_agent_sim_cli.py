"""Flag parsing of ``voice-loadtest agent`` (no server started)."""

from __future__ import annotations

import argparse
import socket

import pytest

from loadtest.agent_sim.cli import add_agent_arguments, main, run_agent, settings_from_args
from loadtest.agent_sim.config import BargeMode, FaultKind, Pace, UniformLatency
from loadtest.protocols.acs import Casing


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_agent_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse()
    assert args.handler is run_agent
    settings = settings_from_args(args)
    assert (settings.host, settings.port, settings.path) == (
        "127.0.0.1",
        8010,
        "/api/v1/media/stream",
    )
    assert settings.policy.endpoint_silence_ms == 500
    assert settings.metrics_port is None and settings.ground_truth is None


def test_all_flags() -> None:
    settings = settings_from_args(
        parse(
            "--latency-dist", "uniform:600,900", "--pace", "burst", "--barge-mode", "late",
            "--casing", "pascal", "--fault", "stall=0.5", "--fault", "refuse_503=0.1",
            "--stall-ms", "300", "--metrics-port", "9100", "--greeting-ms", "400",
        )
    )  # fmt: skip
    policy = settings.policy
    assert policy.latency == UniformLatency(600, 900)
    assert policy.pace is Pace.BURST and policy.barge_mode is BargeMode.LATE
    assert policy.casing is Casing.PASCAL and policy.greeting_ms == 400
    assert policy.faults.probabilities == ((FaultKind.STALL, 0.5), (FaultKind.REFUSE_503, 0.1))
    assert policy.faults.stall_ms == 300
    assert settings.metrics_port == 9100 and settings.metrics_host == "127.0.0.1"


def test_bad_value_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--latency-ms", "300"]) == 2  # a configuration error, as on every entry point
    err = capsys.readouterr().err.strip()
    assert err.startswith("voice-loadtest agent: error: --latency-ms 300 ms is below")
    assert "\n" not in err


def test_port_in_use_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--metrics-port", "0", "--response-audio", "tone"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"voice-loadtest agent: error: --host 127.0.0.1 --port {port}: cannot")
    assert "in use" in err


def test_protocol_flags() -> None:
    settings = settings_from_args(parse("--protocol", "twilio"))
    assert settings.protocol == "twilio" and settings.make_codec().name == "twilio"
    settings = settings_from_args(
        parse("--protocol", "RAW", "--raw-sample-rate", "8000", "--raw-stop-message", "STOP")
    )
    assert (settings.protocol, settings.raw_sample_rate, settings.raw_stop_message) == (
        "raw",
        8000,
        "STOP",
    )
    assert settings_from_args(parse()).protocol == "acs"


def test_protocol_defaults_follow_the_callers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run --with-agent`` hands the callers' environment to the agent: same protocol."""
    monkeypatch.setenv("WS_PROTOCOL", "Raw")
    monkeypatch.setenv("RAW_SAMPLE_RATE", "24000")
    monkeypatch.setenv("RAW_STOP_MESSAGE", '{"type":"stop"}')
    settings = settings_from_args(parse())
    assert (settings.protocol, settings.raw_sample_rate) == ("raw", 24000)
    assert settings.raw_stop_message == '{"type":"stop"}'
    assert settings_from_args(parse("--protocol", "acs")).protocol == "acs"  # flags win


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--protocol", "raw", "--raw-sample-rate", "44100"], "--raw-sample-rate"),
        (["--protocol", "raw", "--raw-sample-rate", "fast"], "--raw-sample-rate 'fast'"),
        (["--protocol", "raw", "--raw-stop-message", ""], "--raw-stop-message is empty"),
    ],
)
def test_bad_protocol_options_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_bad_protocol_from_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WS_PROTOCOL", "sip")
    assert main([]) == 2
    assert (
        "--protocol 'sip' is not supported (allowed: acs, twilio, raw)" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "key.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "k.pem"], "(No such file or directory)"),
        (["--tls-cert", __file__, "--tls-key", __file__], "(not a PEM certificate chain"),
        # checked before the simulator processes start, not once in each of them
        (["--tls-cert", __file__, "--tls-key", __file__, "--processes", "2"], "(not a PEM"),
    ],
)
def test_bad_tls_files_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--port", "0", "--response-audio", "tone"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voice-loadtest agent: error: --tls-") and message in err
    assert "\n" not in err
