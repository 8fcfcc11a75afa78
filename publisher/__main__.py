"""Run the command line as ``python -m publisher``."""

from __future__ import annotations

from publisher.cli import main

main()
