"""Caller audio: PCM helpers, speech boundaries, manifest, scenarios and TTS engines."""
