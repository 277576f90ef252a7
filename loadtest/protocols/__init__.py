"""Wire protocols (sans-I/O): one package per protocol, caller and agent side.

:func:`caller_protocol` returns the caller side chosen by ``WS_PROTOCOL``: ``acs`` (Azure
Communication Services media streaming), ``twilio`` (Twilio Media Streams) or ``raw``
(binary PCM16 frames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadtest.errors import ConfigError
from loadtest.protocols.caller_api import CallerProtocol

if TYPE_CHECKING:
    from loadtest.settings import CallerSettings

__all__ = ["CALLER_PROTOCOLS", "caller_protocol"]

CALLER_PROTOCOLS = ("acs", "twilio", "raw")


def caller_protocol(name: str, settings: CallerSettings | None = None) -> CallerProtocol:
    """The caller side of protocol ``name`` (one of :data:`CALLER_PROTOCOLS`).

    ``settings`` supplies the protocol's own knobs (``RAW_SAMPLE_RATE``, ``RAW_STOP_MESSAGE``,
    ``TWILIO_CUSTOM_PARAMETERS``); without it their defaults apply.
    """
    if name == "acs":
        from loadtest.protocols.acs import AcsCaller

        return AcsCaller()
    if name == "twilio":
        from loadtest.protocols.twilio import TwilioCaller

        parameters = dict(settings.twilio_custom_parameters) if settings is not None else None
        return TwilioCaller(custom_parameters=parameters)
    if name == "raw":
        from loadtest.protocols.raw import RawCaller

        if settings is None:
            return RawCaller()
        return RawCaller(settings.raw_sample_rate, settings.raw_stop_message)
    raise ConfigError(
        f"WS_PROTOCOL={name!r} is not supported (allowed: {', '.join(CALLER_PROTOCOLS)})"
    )
