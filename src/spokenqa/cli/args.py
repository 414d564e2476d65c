"""Argument types shared by the subcommand modules (`cli`, `cli_audio`, `cli_serve`).

They live here, not in `cli.py`, so imports run one way: `cli` imports the subcommand modules to
register them, and every subcommand module imports its types from this leaf module, which
imports nothing of spokenqa. argparse turns an `ArgumentTypeError` into a one-line usage error
with exit status 2, the same status as any other bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive(kind: type) -> Callable[[str], int | float]:
    """argparse `type=` for numbers that must be > 0 (counts, limits, seconds)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def port(text: str) -> int:
    """argparse `type=` for a TCP port; 0 asks the system for any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0-65535 (0: any free port), got {value}")
    return value


__all__ = ["port", "positive"]
