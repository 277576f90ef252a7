"""voice-loadtest: a distributed load harness for real-time voice agents."""

__version__ = "0.1.0"
