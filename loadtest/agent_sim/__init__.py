"""The reference voice agent (``voice-loadtest agent``): speaks ACS media streaming, Twilio
Media Streams or raw binary PCM (``--protocol``).

Core (pure): :mod:`.config` (settings, latency distributions, faults), :mod:`.codecs` (one
adapter per wire protocol), :mod:`.session` (the per-call state machine), :mod:`.actions`
(what a session asks for, ground-truth records), :mod:`.stats` (counters and their
Prometheus rendering), :mod:`.audio` (reply audio).
Edges: :mod:`.server` (asyncio + websockets), :mod:`.ground_truth` (JSONL writer thread),
:mod:`.cli` (argparse wiring). Its capacity benchmark lives beside the package
(``python -m bench.agent``).
"""
