"""Edges of the caller: WebSocket transport, caller driver (greenlets), Locust plugin."""
