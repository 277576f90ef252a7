"""Caller settings: parsed once from env vars and CLI flags into one frozen object (core).

Each setting has a seed-compatible environment variable and a Locust command-line option
(``--ws-url`` for ``WS_URL`` and so on). :func:`parse_settings` takes a plain mapping of
*names → raw strings* (the edge merges env and flags; flags win) and returns
:class:`CallerSettings` or raises :class:`~loadtest.errors.ConfigError` with one line naming
the variable, the value and what is allowed. Secrets (``WS_AUTH_TOKEN``) are kept out of
``repr`` and never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtest.compat_env import translate_compat
from loadtest.errors import ConfigError

__all__ = ["SETTINGS", "CallerSettings", "Knob", "parse_number", "parse_settings"]


@dataclass(frozen=True, slots=True)
class Knob:
    """One setting: its env var, default (a raw string), help text and parser."""

    env: str
    default: str
    help: str
    parse: Callable[[str, str], Any]
    secret: bool = False

    @property
    def option(self) -> str:
        """The Locust/CLI flag, e.g. ``--first-byte-timeout-sec``."""
        return "--" + self.env.lower().replace("_", "-")


def _fail(env: str, raw: str, allowed: str) -> ConfigError:
    return ConfigError(f"{env}={raw!r} is invalid: {allowed}")


def _int(lo: int, hi: int | None = None) -> Callable[[str, str], int]:
    def parse(env: str, raw: str) -> int:
        try:
            value: int | None = int(raw.strip())
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
            raise _fail(env, raw, f"expected a whole number {bound}")
        return value

    return parse


def _float(
    lo: float, hi: float | None = None, *, open_lo: bool = False
) -> Callable[[str, str], float]:
    def parse(env: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            value = float("nan")
        bad_lo = value <= lo if open_lo else value < lo
        if value != value or bad_lo or (hi is not None and value > hi):
            bound = f"> {lo:g}" if open_lo else f">= {lo:g}"
            if hi is not None:
                bound = f"{bound} and <= {hi:g}" if open_lo else f"from {lo:g} to {hi:g}"
            raise _fail(env, raw, f"expected a number {bound}")
        return value

    return parse


def parse_number(env: str, raw: str, lo: float, hi: float) -> float:
    """A number from ``lo`` to ``hi`` for a setting outside :data:`SETTINGS` (the master's
    ``METRICS_LINGER``); the same one-line :class:`ConfigError` as the knobs."""
    return _float(lo, hi)(env, raw)


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(env: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise _fail(env, raw, f"allowed: {', '.join(allowed)}")
        return value

    return parse


def _bool(env: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise _fail(env, raw, "expected true/false (1/0, yes/no)")


def _tokens(env: str, raw: str) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in raw.split(",") if t.strip())


def _text(env: str, raw: str) -> str:
    return raw.strip()


def _ws_url(env: str, raw: str) -> str:
    url = raw.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        fixed = ("wss" if parts.scheme == "https" else "ws") + url[len(parts.scheme) :]
        raise _fail(
            env, raw, f"a WebSocket URL starts with ws:// or wss:// (did you mean {fixed}?)"
        )
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise _fail(env, raw, "expected ws://HOST[:PORT]/PATH or wss://...")
    return url


def _headers(env: str, raw: str) -> tuple[tuple[str, str], ...]:
    """``WS_HEADERS``: a JSON object, or ``Name: value`` pairs separated by ``;``."""
    raw = raw.strip()
    if not raw:
        return ()
    if raw.startswith("{"):
        try:
            mapping = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(env, "<json>", f"not a JSON object ({exc.msg})") from exc
        if not isinstance(mapping, dict):
            raise _fail(env, "<json>", "expected a JSON object of header: value")
        return tuple((str(k), str(v)) for k, v in mapping.items())
    pairs = []
    for item in raw.split(";"):
        if item.strip():
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise _fail(env, "<headers>", "expected 'Name: value; Name2: value2' or JSON")
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _weights(env: str, raw: str) -> tuple[tuple[str, float], ...]:
    """``SCENARIO_WEIGHTS``: ``name=weight,name2=weight`` (empty: the scenarios' own)."""
    out = []
    for item in raw.split(","):
        if item.strip():
            name, sep, value = item.partition("=")
            weight = _float(0.0, open_lo=True)(env, value) if sep else -1.0
            if not sep or not name.strip():
                raise _fail(env, raw, "expected name=weight,name2=weight")
            out.append((name.strip(), weight))
    return tuple(out)


def _rate(env: str, raw: str) -> int:
    allowed = ("8000", "16000", "24000")
    value = raw.strip()
    if value not in allowed:
        raise _fail(env, raw, f"allowed: {', '.join(allowed)} (Hz)")
    return int(value)


def _stop_message(env: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise _fail(
            env, raw, 'expected the text the agent sends to stop, e.g. {"type":"interrupt"}'
        )
    return value


def _parameters(env: str, raw: str) -> tuple[tuple[str, str], ...]:
    """``TWILIO_CUSTOM_PARAMETERS``: a JSON object, or ``name=value`` pairs separated by ``,``."""
    raw = raw.strip()
    if not raw:
        return ()
    if raw.startswith("{"):
        try:
            mapping = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(env, "<json>", f"not a JSON object ({exc.msg})") from exc
        if not isinstance(mapping, dict):
            raise _fail(env, "<json>", "expected a JSON object of name: value")
        return tuple(
            (str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in mapping.items()
        )
    pairs = []
    for item in raw.split(","):
        if item.strip():
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise _fail(env, raw, "expected name=value,name2=value2 or a JSON object")
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _optional(parse: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """``parse``, or ``None`` for an empty value (the setting's default is computed)."""

    def parse_optional(env: str, raw: str) -> Any:
        return parse(env, raw) if raw.strip() else None

    return parse_optional


def _path(env: str, raw: str) -> Path:
    return Path(raw.strip() or ".")


SETTINGS: dict[str, Knob] = {
    k.env: k
    for k in (
        Knob(
            "WS_URL", "", "agent WebSocket URL (ws:// or wss://); Locust --host also works", _ws_url
        ),
        Knob("PCM_DIR", "audio_cache", "audio cache folder (PCM files + manifest.jsonl)", _path),
        Knob(
            "WS_PROTOCOL",
            "acs",
            "wire protocol of the agent: acs (ACS media streaming), twilio (Media Streams), "
            "raw (binary PCM16)",
            _choice("acs", "twilio", "raw"),
        ),
        Knob(
            "RAW_SAMPLE_RATE",
            "16000",
            "WS_PROTOCOL=raw: PCM16 rate on the wire, both ways (8000, 16000 or 24000)",
            _rate,
        ),
        Knob(
            "RAW_STOP_MESSAGE",
            '{"type":"interrupt"}',
            "WS_PROTOCOL=raw: the agent's stop signal (a JSON object matches by its fields, "
            "other text exactly)",
            _stop_message,
        ),
        Knob(
            "TWILIO_CUSTOM_PARAMETERS",
            "",
            "WS_PROTOCOL=twilio: start.customParameters, as JSON or name=value,name2=value2",
            _parameters,
        ),
        Knob("TURNS_PER_USER", "0", "turns per call; 0 = all turns of the scenario", _int(0)),
        Knob("CHUNKS_PER_TURN", "0", "cap on speech frames per turn; 0 = whole utterance", _int(0)),
        Knob("CHUNK_MS", "20", "frame length in ms (10, 20 or 40)", _int(10, 40)),
        Knob(
            "FIRST_BYTE_TIMEOUT_SEC",
            "5",
            "seconds to wait for the agent's answer",
            _float(0.0, 600, open_lo=True),
        ),
        Knob(
            "TURN_TIMEOUT_SEC",
            "",
            "seconds a turn waits for the agent's answer to end, from the caller's end of "
            "speech, before the next turn starts regardless (empty: 30, or "
            "FIRST_BYTE_TIMEOUT_SEC if longer)",
            _optional(_float(0.0, 3600, open_lo=True)),
        ),
        Knob(
            "PAUSE_BETWEEN_TURNS_SEC",
            "0",
            "seconds the caller waits after the agent's answer ended before its next turn "
            "(a barge-in turn does not wait)",
            _float(0.0, 600),
        ),
        Knob(
            "BARGE_QUIET_MS",
            "400",
            "agent-audio gap that counts as stopped (no stop signal)",
            _int(60, 10000),
        ),
        Knob(
            "BARGE_IN_RATE",
            "0.25",
            "share of turns (0..1) on which the caller interrupts",
            _float(0.0, 1.0),
        ),
        Knob(
            "BARGE_AFTER_MS",
            "1000",
            "interrupt this long after the agent's audio began",
            _int(0, 60000),
        ),
        Knob(
            "GREETING",
            "wait",
            "agent greeting on connect: wait for it to finish, barge it, or off (speak at once)",
            _choice("wait", "barge", "off"),
        ),
        Knob(
            "GREETING_TIMEOUT_MS",
            "2000",
            "with GREETING=wait, how long to wait for a greeting before speaking",
            _int(20, 60000),
        ),
        Knob(
            "SILENCE_MODE",
            "noise",
            "caller silence after speech: comfort noise, zeros, or frames flagged silent",
            _choice("noise", "zeros", "flagged"),
        ),
        Knob(
            "WS_IGNORE_CLOSE_EXCEPTIONS",
            "false",
            "benign closes (1000/1001/1006) are counted but not failures",
            _bool,
        ),
        Knob(
            "RESPONSE_TOKENS",
            "",
            "comma list: text/kind substrings that mark an agent response message",
            _tokens,
        ),
        Knob(
            "END_TOKENS",
            "",
            "comma list: text/kind substrings that mark the end of the agent's turn",
            _tokens,
        ),
        Knob(
            "WS_HEADERS",
            "",
            "extra upgrade headers: 'Name: value; Name2: value2' or JSON",
            _headers,
        ),
        Knob("WS_SUBPROTOCOL", "", "WebSocket subprotocol to request", _text),
        Knob(
            "WS_AUTH_TOKEN",
            "",
            "bearer token sent as Authorization header (secret)",
            _text,
            secret=True,
        ),
        Knob("WS_CA_BUNDLE", "", "CA bundle file for wss:// (default: system/certifi CAs)", _text),
        Knob(
            "WS_INSECURE",
            "false",
            "disable TLS certificate verification (explicit opt-in only)",
            _bool,
        ),
        Knob(
            "SCENARIO_WEIGHTS", "", "name=weight,... to weight scenarios (default equal)", _weights
        ),
        Knob(
            "SCENARIOS_FILE",
            "",
            "scenarios YAML (generate-audio's format): play only its scenarios, with its "
            "weights; the audio cache must hold each one's turns (empty: every cached scenario)",
            _text,
        ),
        Knob("PER_TURN_STATS", "false", "also report ttfb/<scenario>/<turn> rows", _bool),
        Knob(
            "RECONNECT_MAX", "3", "reconnect attempts per call after a failed connect", _int(0, 100)
        ),
        Knob(
            "RECONNECT_BASE_DELAY_MS",
            "200",
            "a caller's wait after its first failed connect; doubles with each consecutive "
            "failure, across calls (random 0..ceiling), until one connects",
            _int(1, 600_000),
        ),
        Knob(
            "RECONNECT_MAX_DELAY_MS",
            "10000",
            "the longest a caller waits between connection attempts (caps the backoff)",
            _int(1, 3_600_000),
        ),
        Knob(
            "WS_MAX_MESSAGE_BYTES",
            "1048576",
            "largest agent message accepted; a larger one fails the call as protocol_error",
            _int(1024, 1 << 30),
        ),
        Knob(
            "SAMPLE_RATE",
            "",
            "sample rate of the audio cache in Hz: checked against its manifest; a folder of "
            "PCM files without one is read at this rate (empty: the manifest's, else 16000)",
            _optional(_rate),
        ),
        Knob("SEED", "", "random seed for scenario choice and barge-in (empty: random)", _text),
        Knob(
            "TURN_LOG",
            "",
            "per-turn log: one JSON line per turn to this file, {pid} becomes the process id "
            "(empty: off; see docs/turn-log.md)",
            _text,
        ),
        Knob(
            "PROBE",
            "true",
            "place one call before the run (the protocol's opening, then a normal close); "
            "false (--no-probe) for agents that bill or page on every call",
            _bool,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class CallerSettings:
    """Everything a caller needs, validated. Times carry their unit in the name."""

    ws_url: str
    pcm_dir: Path
    ws_protocol: str
    raw_sample_rate: int
    raw_stop_message: str
    twilio_custom_parameters: tuple[tuple[str, str], ...]
    turns_per_user: int
    chunks_per_turn: int
    chunk_ms: int
    first_byte_timeout_ms: int
    turn_timeout_ms: int | None
    pause_between_turns_ms: int
    barge_quiet_ms: int
    barge_in_rate: float
    barge_after_ms: int
    greeting: str
    greeting_timeout_ms: int
    silence_mode: str
    ws_ignore_close_exceptions: bool
    response_tokens: tuple[str, ...]
    end_tokens: tuple[str, ...]
    ws_headers: tuple[tuple[str, str], ...]
    ws_subprotocol: str
    ws_ca_bundle: str
    ws_insecure: bool
    scenario_weights: tuple[tuple[str, float], ...]
    scenarios_file: str
    per_turn_stats: bool
    reconnect_max: int
    reconnect_base_delay_ms: int
    reconnect_max_delay_ms: int
    ws_max_message_bytes: int
    sample_rate: int | None
    seed: int | None
    probe: bool = True
    turn_log: str = ""
    ws_auth_token: str = field(default="", repr=False)

    def with_url(self, url: str) -> CallerSettings:
        """A copy aimed at ``url`` (validated like ``WS_URL``)."""
        return replace(self, ws_url=_ws_url("WS_URL", url))


def parse_settings(raw: Mapping[str, str | None]) -> CallerSettings:
    """Validate ``raw`` (env-var names → strings; missing/None = default) into settings.

    The accelerator's variables in ``raw`` (:mod:`loadtest.compat_env`) set the knob they
    mean, or stop here with one line saying what to use instead.
    """
    raw, origins = translate_compat(raw)
    values: dict[str, Any] = {}
    for env, knob in SETTINGS.items():
        text = raw.get(env)
        try:
            values[env] = knob.parse(env, knob.default if text is None else str(text))
        except ConfigError as exc:
            if env not in origins:
                raise
            raise ConfigError(f"{exc} (set from {origins[env]})") from None
    if values["CHUNK_MS"] not in (10, 20, 40):
        raise _fail("CHUNK_MS", str(values["CHUNK_MS"]), "allowed: 10, 20, 40")
    seed_text = values["SEED"]
    try:
        seed = int(seed_text) if seed_text else None
    except ValueError as exc:
        raise _fail("SEED", seed_text, "expected a whole number or empty") from exc
    turn_timeout = values["TURN_TIMEOUT_SEC"]
    if turn_timeout is not None and turn_timeout < values["FIRST_BYTE_TIMEOUT_SEC"]:
        raise _fail(
            "TURN_TIMEOUT_SEC",
            f"{turn_timeout:g}",
            f"must be >= FIRST_BYTE_TIMEOUT_SEC ({values['FIRST_BYTE_TIMEOUT_SEC']:g})",
        )
    if values["RECONNECT_MAX_DELAY_MS"] < values["RECONNECT_BASE_DELAY_MS"]:
        raise _fail(
            "RECONNECT_MAX_DELAY_MS",
            str(values["RECONNECT_MAX_DELAY_MS"]),
            f"must be >= RECONNECT_BASE_DELAY_MS ({values['RECONNECT_BASE_DELAY_MS']})",
        )
    if values["WS_INSECURE"] and values["WS_CA_BUNDLE"]:
        raise ConfigError("WS_INSECURE=1 and WS_CA_BUNDLE are both set; choose one")
    if values["WS_CA_BUNDLE"] and not Path(values["WS_CA_BUNDLE"]).is_file():
        raise _fail("WS_CA_BUNDLE", values["WS_CA_BUNDLE"], "file not found")

    return CallerSettings(
        ws_url=values["WS_URL"],
        pcm_dir=values["PCM_DIR"],
        ws_protocol=values["WS_PROTOCOL"],
        raw_sample_rate=values["RAW_SAMPLE_RATE"],
        raw_stop_message=values["RAW_STOP_MESSAGE"],
        twilio_custom_parameters=values["TWILIO_CUSTOM_PARAMETERS"],
        turns_per_user=values["TURNS_PER_USER"],
        chunks_per_turn=values["CHUNKS_PER_TURN"],
        chunk_ms=values["CHUNK_MS"],
        first_byte_timeout_ms=round(values["FIRST_BYTE_TIMEOUT_SEC"] * 1000),
        turn_timeout_ms=None if turn_timeout is None else round(turn_timeout * 1000),
        pause_between_turns_ms=round(values["PAUSE_BETWEEN_TURNS_SEC"] * 1000),
        barge_quiet_ms=values["BARGE_QUIET_MS"],
        barge_in_rate=values["BARGE_IN_RATE"],
        barge_after_ms=values["BARGE_AFTER_MS"],
        greeting=values["GREETING"],
        greeting_timeout_ms=values["GREETING_TIMEOUT_MS"],
        silence_mode=values["SILENCE_MODE"],
        ws_ignore_close_exceptions=values["WS_IGNORE_CLOSE_EXCEPTIONS"],
        response_tokens=values["RESPONSE_TOKENS"],
        end_tokens=values["END_TOKENS"],
        ws_headers=values["WS_HEADERS"],
        ws_subprotocol=values["WS_SUBPROTOCOL"],
        ws_ca_bundle=values["WS_CA_BUNDLE"],
        ws_insecure=values["WS_INSECURE"],
        scenario_weights=values["SCENARIO_WEIGHTS"],
        scenarios_file=values["SCENARIOS_FILE"],
        per_turn_stats=values["PER_TURN_STATS"],
        reconnect_max=values["RECONNECT_MAX"],
        reconnect_base_delay_ms=values["RECONNECT_BASE_DELAY_MS"],
        reconnect_max_delay_ms=values["RECONNECT_MAX_DELAY_MS"],
        ws_max_message_bytes=values["WS_MAX_MESSAGE_BYTES"],
        sample_rate=values["SAMPLE_RATE"],
        seed=seed,
        probe=values["PROBE"],
        turn_log=values["TURN_LOG"],
        ws_auth_token=values["WS_AUTH_TOKEN"],
    )
