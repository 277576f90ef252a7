"""The start-up probe (edge): one call that opens and ends the way a real call does.

Before any caller starts, one process places exactly one call to ``WS_URL`` — ``voice-loadtest
run`` before it starts Locust (and then tells the master not to probe again), otherwise the
Locust master or standalone process at ``test_start``. The call speaks the protocol:

* **ACS** — the upgrade with the call's ``x-ms-call-connection-id`` and
  ``x-ms-call-correlation-id`` headers (plus ``WS_HEADERS`` and the bearer token), one
  ``AudioMetadata`` (the audio cache's rate where this process can read the cache, else
  16 kHz; ``CHUNK_MS`` frames), then a normal close (1000);
* **Twilio** — ``connected``, ``start`` (its own ``streamSid`` and ``callSid``, the
  ``TWILIO_CUSTOM_PARAMETERS``), ``stop``, then a normal close;
* **raw** — the upgrade, then a normal close.

No audio is sent. Only a failed upgrade stops the run (:class:`TargetUnreachable`, exit code
2); what the agent does with the call is its business. ``PROBE=false`` (``--no-probe``) skips
the probe, for agents that bill or page on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loadtest.audio.manifest import MANIFEST_NAME, parse_line
from loadtest.errors import LoadtestError, TargetUnreachable
from loadtest.protocols import caller_protocol
from loadtest.protocols.caller_api import CallStream
from loadtest.runtime.transport import Closed, ConnectFailed, WebSocketTransport
from loadtest.settings import CallerSettings

__all__ = ["DEFAULT_PROBE_RATE", "PROBED_ENV", "cache_rate", "probe"]

DEFAULT_PROBE_RATE = 16000
"""What the ACS probe declares when this process cannot read the audio cache (Hz)."""
PROBED_ENV = "VOICE_LOADTEST_PROBED"
"""Set by ``voice-loadtest run`` in the environment of its Locust processes once it placed
the run's probe, so the master does not place a second one (``PROBE`` itself stays as the
user set it, and the summary shows it so)."""


@dataclass(slots=True)
class _ProbeCall:
    call_id: str
    sample_rate: int
    frame_ms: int


def cache_rate(directory: Path) -> int:
    """The sample rate of the cache in ``directory`` from its manifest's first entry, or
    :data:`DEFAULT_PROBE_RATE` when there is no readable manifest (a master without audio)."""
    try:
        text = (directory / MANIFEST_NAME).read_text(encoding="utf-8", errors="replace")
        line = next((line for line in text.splitlines() if line.strip()), "")
        return parse_line(line, where=MANIFEST_NAME).sample_rate if line else DEFAULT_PROBE_RATE
    except (OSError, LoadtestError):
        return DEFAULT_PROBE_RATE


def probe(settings: CallerSettings, sample_rate: int, timeout_s: float = 5.0) -> None:
    """Place the probe call (see the module docstring); raise :class:`TargetUnreachable` if
    the upgrade fails. ``sample_rate`` is the caller audio's (ACS declares it)."""
    protocol = caller_protocol(settings.ws_protocol, settings)
    transport = WebSocketTransport(settings)
    try:
        transport.connect(settings.ws_url, timeout_s)
    except ConnectFailed as exc:
        advice = (
            "trust the agent's CA with WS_CA_BUNDLE (--ws-ca-bundle FILE)"
            if exc.error == "tls_error"
            else "check WS_URL and that the agent is up (or use --with-agent)"
        )
        raise TargetUnreachable(
            f"cannot reach the agent at {settings.ws_url}: {exc.detail} [{exc.error}]; {advice}"
        ) from None
    call = _ProbeCall(transport.call_id, sample_rate, settings.chunk_ms)
    stream = CallStream(protocol.stream_id(call))
    try:
        for message in protocol.open_messages(call, stream):
            transport.send(message)
        for message in protocol.close_messages(call, 0, stream):
            transport.send(message)
    except Closed:
        pass  # the agent ended the call first: the upgrade worked, which is what is checked
    finally:
        transport.close(1000)
