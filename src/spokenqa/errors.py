"""Errors that carry a one-line, user-facing message, and notices.

Library code raises these; the CLI prints the message alone and exits with the error's
`exit_status`: 2 for bad input or usage (data, settings, paths, audio), 1 for a run that failed
for another reason (a full disk or a non-finite loss in training). Anything else that escapes is
an internal error: a line naming it, status 1 (docs/RELIABILITY.md).
"""

import sys


def notice(message: str) -> None:
    """One line on stderr: something the user should know that is not an error (stdout carries the
    command's result)."""
    print(f"spokenqa: {message}", file=sys.stderr, flush=True)


class SpokenQAError(Exception):
    """Base class: the message names what is wrong and where (file, article, question id)."""

    exit_status = 2  # bad input or usage


class DataError(SpokenQAError):
    """A data file is missing, unreadable or malformed."""


class ConfigError(SpokenQAError):
    """A setting, flag or path is invalid or the combination is impossible."""


class AudioError(SpokenQAError):
    """An audio input is not audio, is too long, or cannot be decoded."""


class TrainingError(SpokenQAError):
    """Training cannot go on (non-finite loss, full disk) and stopped cleanly: not bad input."""

    exit_status = 1
