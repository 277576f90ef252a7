"""The harness benchmark, run from a clone (``make bench``, ``python -m bench``): how many
callers a worker core carries truthfully, how exact the measurements are against an agent's
ground truth, and what a caller costs.

It is a workshop tool beside the package, not part of it: the image, the wheel and the Azure
Load Testing archive carry only ``loadtest``. Nothing is imported here, so :mod:`bench.worker`
can monkey-patch gevent before anything else loads. :mod:`bench.cli` is the entry point.
"""
