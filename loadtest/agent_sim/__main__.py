"""``python -m loadtest.agent_sim``: run the agent simulator (same flags as ``agent``)."""

from __future__ import annotations

import sys

from loadtest.agent_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
