"""Wire protocols (sans-I/O): one module per protocol, caller and agent side.

:func:`caller_protocol` returns the caller side chosen by ``WS_PROTOCOL``.
"""

from __future__ import annotations

from loadtest.errors import ConfigError
from loadtest.protocols.caller_api import CallerProtocol

__all__ = ["CALLER_PROTOCOLS", "caller_protocol"]

CALLER_PROTOCOLS = ("acs",)


def caller_protocol(name: str) -> CallerProtocol:
    """The caller side of protocol ``name`` (``acs``; more in later releases)."""
    if name == "acs":
        from loadtest.protocols.acs import AcsCaller

        return AcsCaller()
    raise ConfigError(
        f"WS_PROTOCOL={name!r} is not supported (allowed: {', '.join(CALLER_PROTOCOLS)})"
    )
