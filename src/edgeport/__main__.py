"""``python -m edgeport``."""

from edgeport.cli import run

run()
