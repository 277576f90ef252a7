"""The prose of docs/benchmarks.md that a run does not measure: what limits the figures and
how the caller got there (from the profiling behind issue 9; dated where it quotes numbers)."""

from __future__ import annotations

__all__ = ["LIMITS"]

LIMITS = """## What limits the figures, and what would lift them

**The agent, on a 2-CPU machine.** One reference-agent process (asyncio, one core) serves
every caller; it decodes and runs the VAD on every inbound frame and writes the ground truth.
Where its CPU column reaches ~95 %, its reads and replies come late and in bursts: the
caller→agent leg of the accuracy table grows (the agent reads the end of speech late — a
real caller would feel that too), and the worker's receive lag follows the bursts; past that
point the capacity figure is a lower bound for the worker. Since the agent reads ordinary
frames itself and shares one timer per millisecond between calls (Nov 2026) it stays near
half a core at the worker's capacity, so the worker sets the figure. Its own limit is in the
agent section: per frame and call it parses, classifies and answers in Python and makes one
read and one write system call.

**The worker's CPU per frame.** With frames pre-encoded and one scheduler serving every
caller, what is left is work done once per frame that no cache removes (profile above; during
development, py-spy at 400 callers on a busy 2-vCPU VM: conversation engine ~31 %, `send()`
~28 %, scheduler and receive callbacks ~13 %, framing and masking ~10 %, ACS timestamp
rendering ~9 %, histograms ~4 %, inbound classification ~3 %, gevent's hub ~1 %):

- `send()` — one system call per frame per caller; each caller has its own TCP connection,
  so frames cannot be coalesced. On loopback the sender's call also delivers the segment
  to the receiving socket, so a real network costs the worker less. Batching below Python
  (`io_uring`) is what would lift it; neither the standard library nor gevent offers it.
- the conversation engine — ~5 µs per frame measured in isolation (`frames_due` builds a
  frozen `Frame` dataclass and a list per call, `sent` checks the order, `_advance` runs on
  every call). Reusing frame objects and a fast path for "same turn, next slot" would
  roughly halve it.
- inbound classification — `json.loads` of every agent message (~3.6 µs for a 1 KB
  `AudioData`): a prefix check for the common shape (locate `"data":"` and its closing
  quote) in the ACS protocol would skip the parse.
- the ACS timestamp — `iso_timestamp` and the string concatenation per frame; a per-ms cache
  of the rendered prefix shared by every caller due in the same millisecond would trim it.

**Lateness breaks before the core is full** (~85–90 % here): the event loop's timers have
~1 ms granularity and inbound bursts take whole loop iterations; the receive callbacks serve
senders that are over 1 ms late, which keeps lateness down but moves the wait to the
receive side — hence receive lag is part of the verdict.

Beyond one core: add worker processes (one per core). Workers share nothing; the scale-out
section shows what a second one costs the first.

## How the caller got here (issue 9)

Measured on the 2-vCPU development VM while it was shared with other test runs, the agent
and the worker each isolated with `chrt -f 10` and pinned to their own vCPU
(`python -m bench.worker`, 10 s windows), old caller → new caller:

| callers | worker CPU % | lateness p99 ms | receive lag p99 ms | verdict |
|---|---|---|---|---|
| 200 | 63 → 37 | 1.2 → 1.1 | 1.1 → 1.3 | holds → holds |
| 300 | 89 → 57 | 2.0 → 1.1 | 15 → 1.8 | fails → holds |
| 400 | 95 → 65 | 119 → 1.1 | 188 → 2.0 | fails → holds |
| 500 | 95 → 71 | 80 → 1.4 | 95 → 6.1 | fails (rate 0.80) → fails (lag) |
| 600 | – → 80 | – → 2.7 | – → 38 | – → fails (lag) |

From 400 callers on the agent was at ~95 % of its vCPU, so the new caller's limit on that
machine is the agent's as much as its own.

RSS per caller (five-turn calls): 30.7 → 22.1 KB. The changes: one pre-built, masked frame
per send (websockets' C `apply_mask`, a fresh `os.urandom` key per frame) written by one
non-blocking `send`, instead of websocket-client's `ABNF` path; inbound frames parsed from
one `recv` per readiness event in a watcher callback instead of a receiver greenlet (three
`recv` calls and two greenlet switches per message before); one frame scheduler per worker
serving every due caller per wake-up instead of a greenlet sleep per frame per caller; the
frame phase of each call dithered over one frame period, so a worker's callers are not all
due at the same instant; `gc.freeze()` after start-up.
"""
