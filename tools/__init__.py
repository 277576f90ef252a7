"""Build tooling beside the package: generators of the committed files that derive from code.

Run from the repository root as ``python -m tools.<module>``; ``make generate`` regenerates
everything, ``make check-generated`` fails when a committed file drifted. Nothing here ships:
the image, the wheel and the Azure Load Testing archive carry only ``loadtest``.
"""
