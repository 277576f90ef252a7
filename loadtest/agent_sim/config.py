"""Settings of the agent simulator: reply policy, latency distributions, faults (core).

Everything here is parsed and validated once, at start-up, into frozen objects; a bad value
raises :class:`ConfigError` naming the flag, the value and what is allowed. The
*causality* rule lives here: the reply latency is measured from the caller's last speech frame,
and the agent only knows the turn ended after ``endpoint_silence_ms`` of silence, so no latency
sample may be below the endpointing silence.
"""

from __future__ import annotations

import enum
import math
import random
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.agent_sim.codecs import AgentCodec, make_codec
from loadtest.audio.vad import DEFAULT_VAD
from loadtest.errors import ConfigError
from loadtest.protocols.acs import Casing

__all__ = [
    "CONNECTION_FAULTS",
    "FRAME_MS",
    "AgentSettings",
    "BargeMode",
    "FaultKind",
    "FaultPlan",
    "FixedLatency",
    "LatencyDist",
    "LognormalLatency",
    "Pace",
    "ReplyPolicy",
    "UniformLatency",
    "parse_fault",
    "parse_latency_dist",
]

FRAME_MS = DEFAULT_VAD.frame_ms
"""The frame grid of response audio and of the VAD (20 ms), shared with the callers."""


@dataclass(frozen=True, slots=True)
class FixedLatency:
    """Every reply ``value_ms`` after the last speech frame."""

    value_ms: float

    @property
    def min_ms(self) -> float:
        return self.value_ms

    def sample_ms(self, rng: random.Random) -> float:
        """One latency in ms; consumes one draw from ``rng`` (so seeds line up across kinds)."""
        rng.random()
        return self.value_ms

    def describe(self) -> str:
        return f"fixed:{self.value_ms:g}"


@dataclass(frozen=True, slots=True)
class UniformLatency:
    """Latency uniform in ``[low_ms, high_ms]``."""

    low_ms: float
    high_ms: float

    @property
    def min_ms(self) -> float:
        return self.low_ms

    def sample_ms(self, rng: random.Random) -> float:
        return rng.uniform(self.low_ms, self.high_ms)

    def describe(self) -> str:
        return f"uniform:{self.low_ms:g},{self.high_ms:g}"


@dataclass(frozen=True, slots=True)
class LognormalLatency:
    """Log-normal latency with median ``median_ms`` and shape ``sigma`` (of ln ms).

    Samples below ``floor_ms`` (the endpointing silence) are raised to it: an agent cannot
    answer before it detected the end of the turn.
    """

    median_ms: float
    sigma: float
    floor_ms: float = 0.0

    @property
    def min_ms(self) -> float:
        return self.floor_ms

    def sample_ms(self, rng: random.Random) -> float:
        return max(self.floor_ms, rng.lognormvariate(math.log(self.median_ms), self.sigma))

    def describe(self) -> str:
        return f"lognormal:{self.median_ms:g},{self.sigma:g}"


LatencyDist = FixedLatency | UniformLatency | LognormalLatency


def _numbers(spec: str, text: str, count: int) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ConfigError(
            f"--latency-dist {spec!r}: expected {count} comma-separated numbers after the colon"
        )
    return values


def parse_latency_dist(spec: str, latency_ms: float, endpoint_silence_ms: int) -> LatencyDist:
    """Parse ``fixed`` | ``uniform:LO,HI`` | ``lognormal:MEDIAN,SIGMA`` (milliseconds).

    ``fixed`` uses ``latency_ms`` (``--latency-ms``). Raises :class:`ConfigError` for a bad
    spec and for any distribution that could reply before ``endpoint_silence_ms``.
    """
    name, _, rest = spec.strip().partition(":")
    name = name.lower()
    dist: LatencyDist
    if name == "fixed" and not rest:
        dist = FixedLatency(float(latency_ms))
    elif name == "uniform":
        low, high = _numbers(spec, rest, 2)
        if not 0 <= low <= high:
            raise ConfigError(f"--latency-dist {spec!r}: need 0 <= LO <= HI")
        dist = UniformLatency(low, high)
    elif name == "lognormal":
        median, sigma = _numbers(spec, rest, 2)
        if median <= 0 or not 0 <= sigma <= 3:
            raise ConfigError(f"--latency-dist {spec!r}: need MEDIAN > 0 and 0 <= SIGMA <= 3")
        if median < endpoint_silence_ms:
            raise ConfigError(
                f"--latency-dist {spec!r}: median {median:g} ms is below --endpoint-silence-ms "
                f"{endpoint_silence_ms}; {_CAUSALITY}"
            )
        dist = LognormalLatency(median, sigma, floor_ms=float(endpoint_silence_ms))
    else:
        raise ConfigError(
            f"--latency-dist {spec!r} is not allowed (fixed | uniform:LO,HI | "
            "lognormal:MEDIAN,SIGMA, in ms)"
        )
    if dist.min_ms < endpoint_silence_ms:
        what = "--latency-ms" if isinstance(dist, FixedLatency) else f"--latency-dist {spec!r}"
        raise ConfigError(
            f"{what} {dist.min_ms:g} ms is below --endpoint-silence-ms {endpoint_silence_ms}; "
            f"{_CAUSALITY}"
        )
    return dist


_CAUSALITY = (
    "the latency is measured from the caller's last speech frame and the agent only knows the "
    "turn ended after that much silence (raise the latency or lower the endpoint silence)"
)


class FaultKind(enum.Enum):
    """Faults the simulator injects so the harness's failure handling can be tested."""

    REFUSE_503 = "refuse_503"  # refuse the upgrade with HTTP 503
    CLOSE_BEFORE_METADATA = "close_before_metadata"  # accept, then close (1011) at once
    CLOSE_1011 = "close_1011"  # mid-reply: close with 1011
    RESET = "reset"  # mid-reply: abrupt TCP reset, no close frame
    SILENT = "silent"  # never answer this turn
    MALFORMED_JSON = "malformed_json"  # a truncated JSON text frame before the reply
    BINARY_GARBAGE = "binary_garbage"  # a binary frame of random bytes before the reply
    STALL = "stall"  # answer --stall-ms later than the latency


CONNECTION_FAULTS = (FaultKind.REFUSE_503, FaultKind.CLOSE_BEFORE_METADATA)
"""Faults drawn once per connection (at the upgrade); the others are drawn per turn."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Probabilities of each fault. Draws always consume exactly one random number, so one
    seed gives the same latencies whatever the faults' outcome."""

    probabilities: tuple[tuple[FaultKind, float], ...] = ()
    stall_ms: int = 2000

    def __post_init__(self) -> None:
        for group in (True, False):
            total = sum(p for k, p in self.probabilities if (k in CONNECTION_FAULTS) is group)
            if total > 1.0 + 1e-9:
                scope = "per-connection" if group else "per-turn"
                raise ConfigError(f"--fault: {scope} probabilities add up to {total:g} (> 1)")
        if self.stall_ms < 0:
            raise ConfigError(f"--stall-ms {self.stall_ms} must be >= 0")

    def _draw(self, rng: random.Random, connection: bool) -> FaultKind | None:
        u = rng.random()
        for kind, probability in self.probabilities:
            if (kind in CONNECTION_FAULTS) is connection:
                if u < probability:
                    return kind
                u -= probability
        return None

    def draw_connection(self, rng: random.Random) -> FaultKind | None:
        """The connection-level fault for a new connection, if any."""
        return self._draw(rng, True)

    def draw_turn(self, rng: random.Random) -> FaultKind | None:
        """The turn-level fault for a reply, if any."""
        return self._draw(rng, False)


def parse_fault(spec: str) -> tuple[FaultKind, float]:
    """Parse one ``--fault KIND=PROBABILITY`` (probability 0..1; ``-`` or ``_`` in names)."""
    name, sep, value = spec.partition("=")
    allowed = ", ".join(k.value for k in FaultKind)
    try:
        kind = FaultKind(name.strip().lower().replace("-", "_"))
    except ValueError:
        raise ConfigError(f"--fault {spec!r}: unknown kind (allowed: {allowed})") from None
    try:
        probability = float(value)
    except ValueError:
        probability = math.nan
    if not sep or not 0.0 <= probability <= 1.0:
        raise ConfigError(f"--fault {spec!r}: expected KIND=PROBABILITY with 0 <= PROBABILITY <= 1")
    return kind, probability


class BargeMode(enum.Enum):
    """What the agent does when the caller talks over its reply."""

    STOP = "stop"  # StopAudio --barge-latency-ms after barge speech starts; audio stops
    IGNORE = "ignore"  # keeps talking, never sends StopAudio
    LATE = "late"  # like stop, but --barge-late-ms later still


class Pace(enum.Enum):
    """How reply frames are sent."""

    REALTIME = "realtime"  # frame k at t0 + k × 20 ms
    BURST = "burst"  # chunks of --burst-ms sent back to back, --burst-speed × real time


def _frames(name: str, value_ms: int, minimum_ms: int) -> int:
    if value_ms < minimum_ms or value_ms % FRAME_MS:
        raise ConfigError(
            f"{name} {value_ms} must be a multiple of {FRAME_MS} ms and >= {minimum_ms}"
        )
    return value_ms // FRAME_MS


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    """How one simulated agent takes turns (what the sans-I/O session needs).

    Times are in milliseconds. ``latency`` is measured from the receive time of the caller's
    last speech frame to the first reply frame; ``barge_latency_ms`` from the receive time of
    the first barge speech frame to StopAudio.
    """

    latency: LatencyDist = field(default_factory=lambda: FixedLatency(800.0))
    endpoint_silence_ms: int = 500
    response_ms: int = 2000
    greeting_ms: int = 0
    pace: Pace = Pace.REALTIME
    burst_ms: int = 200
    burst_speed: float = 4.0
    barge_min_speech_ms: int = 60
    barge_latency_ms: int = 200
    barge_mode: BargeMode = BargeMode.STOP
    barge_late_ms: int = 1000
    faults: FaultPlan = field(default_factory=FaultPlan)
    casing: Casing = Casing.CAMEL
    transcripts: bool = False
    reply_text: str = "Thanks for calling. Let me look into that for you."

    def __post_init__(self) -> None:
        _frames("--endpoint-silence-ms", self.endpoint_silence_ms, FRAME_MS)
        _frames("--response-ms", self.response_ms, FRAME_MS)
        if self.greeting_ms:
            _frames("--greeting-ms", self.greeting_ms, FRAME_MS)
        _frames("--burst-ms", self.burst_ms, FRAME_MS)
        _frames("--barge-min-speech-ms", self.barge_min_speech_ms, FRAME_MS)
        if not 1.0 <= self.burst_speed <= 1000.0:
            raise ConfigError(f"--burst-speed {self.burst_speed:g} must be in 1..1000")
        if self.latency.min_ms < self.endpoint_silence_ms:
            raise ConfigError(
                f"latency {self.latency.min_ms:g} ms is below --endpoint-silence-ms "
                f"{self.endpoint_silence_ms}; {_CAUSALITY}"
            )
        onset_ms = DEFAULT_VAD.onset_frames * FRAME_MS
        needed = max(self.barge_min_speech_ms, onset_ms)
        if self.barge_latency_ms < needed:
            raise ConfigError(
                f"--barge-latency-ms {self.barge_latency_ms} is below {needed} ms: barge speech "
                f"is only detected after --barge-min-speech-ms {self.barge_min_speech_ms} "
                f"(and the VAD onset of {onset_ms} ms)"
            )
        if self.barge_late_ms < 0:
            raise ConfigError(f"--barge-late-ms {self.barge_late_ms} must be >= 0")

    @property
    def response_frames(self) -> int:
        return self.response_ms // FRAME_MS

    @property
    def greeting_frames(self) -> int:
        return self.greeting_ms // FRAME_MS

    @property
    def barge_min_frames(self) -> int:
        return self.barge_min_speech_ms // FRAME_MS


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Everything ``voice-loadtest agent`` runs with: the policy, the wire protocol
    (``protocol``; ``raw_*`` apply to ``raw``) and the server's edges."""

    policy: ReplyPolicy = field(default_factory=ReplyPolicy)
    protocol: str = "acs"
    raw_sample_rate: int = 16000
    raw_stop_message: str = '{"type":"interrupt"}'
    host: str = "127.0.0.1"
    port: int = 8010
    path: str = "/api/v1/media/stream"
    seed: int = 0
    response_audio: str = "tone"
    tts_engine: str = "espeak"
    ground_truth: Path | None = None
    tls_cert: Path | None = None  # with tls_key: serve wss://
    tls_key: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    max_message_bytes: int = 65536
    event_loop: str = "auto"
    processes: int = 1
    reuse_port: bool = False  # set for each of several processes sharing the port
    process_index: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is not 0..65535")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port {self.metrics_port} is not 0..65535")
        if not self.path.startswith("/"):
            raise ConfigError(f"--path {self.path!r} must start with '/'")
        if self.response_audio not in ("tone", "speech"):
            raise ConfigError(f"--response-audio {self.response_audio!r} (allowed: tone, speech)")
        if self.max_message_bytes < 1024:
            raise ConfigError(f"--max-message-bytes {self.max_message_bytes} must be >= 1024")
        if self.event_loop not in ("auto", "asyncio", "uvloop"):
            raise ConfigError(f"--event-loop {self.event_loop!r} (allowed: auto, asyncio, uvloop)")
        if not 1 <= self.processes <= 256:
            raise ConfigError(f"--processes {self.processes} is not 1..256 (one per core)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together: give both to serve wss://")
        self.make_codec()  # validates the protocol and its options

    @property
    def scheme(self) -> str:
        return "ws" if self.tls_cert is None else "wss"

    def tls_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (``None``: plain ws://); raises :class:`ConfigError`."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except ssl.SSLError:  # (an OSError too) its text names OpenSSL's source line
            reason = "not a PEM certificate chain and its matching key"
        except OSError as exc:
            reason = exc.strerror or str(exc)
        else:
            return context
        raise ConfigError(
            f"--tls-cert {self.tls_cert} --tls-key {self.tls_key}: cannot load ({reason}); "
            "give a PEM certificate chain and its private key"
        )

    def make_codec(self) -> AgentCodec:
        """The wire protocol's codec (raises :class:`ConfigError` for a bad protocol option)."""
        return make_codec(
            self.protocol,
            casing=self.policy.casing,
            raw_sample_rate=self.raw_sample_rate,
            raw_stop_message=self.raw_stop_message,
        )
