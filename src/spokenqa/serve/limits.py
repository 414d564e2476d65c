"""What the server accepts and keeps: every size, count and time limit of `spokenqa serve` in one
frozen dataclass, handed to `create_app` whole (``create_app(ckpt, Limits(max_questions=4))``) and
reported by ``GET /health`` as ``limits``.

No other limit is derived from these: each one bounds exactly what its docstring says.
"""

from dataclasses import asdict, dataclass

from spokenqa.data import MAX_QUESTION_CHARS
from spokenqa.errors import ConfigError

MiB = 2**20


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and what the server keeps. Defaults suit one CPU box and
    recordings of a few minutes. Every field must be more than 0 (ConfigError otherwise)."""

    max_body_bytes: int = 32 * MiB
    """Request body of ``POST /v1/transcribe`` (the audio upload), multipart framing included: 413 over it."""
    max_json_bytes: int = 1 * MiB
    """Request body of every other request: 413 over it."""
    max_audio_seconds: float = 600.0
    """Length of one uploaded recording: 422 over it."""
    max_questions: int = 16
    """Questions in one ``POST /v1/answer``: 422 over it."""
    max_question_chars: int = MAX_QUESTION_CHARS
    """Characters in one question: 422 over it (the CLI's and `QA.answer`'s limit by default)."""
    max_context_chars: int = 20_000
    """Characters in a pasted ``context``: 422 over it."""
    max_top_k: int = 20
    """Answers per question (``top_k``): 422 over it."""
    max_search_k: int = 50
    """Passages one ``POST /v1/search`` returns (``k``): 422 over it."""
    max_passages: int = 20
    """Passages the reader reads per question in ``POST /v1/answer`` over the archive
    (``passages``): 422 over it (each one is a window of the model's time)."""
    max_transcripts: int = 32
    """Transcripts (each with its uploaded audio) kept in memory for ``transcript_id`` and
    ``/v1/audio``; past it the least recently used is dropped."""
    max_stored_audio_bytes: int = 256 * MiB
    """Bytes of uploaded audio kept in memory, over all stored transcripts together; past it the
    least recently used transcripts are dropped (the newest upload is always kept, even when its
    audio alone is larger). With the defaults: 8 uploads of the largest size allowed."""
    max_pending: int = 64
    """Requests waiting for the model or the ASR at once: 503 (``Retry-After: 1``) past it."""
    max_body_seconds: float = 120.0
    """Seconds from a request's headers until its whole body has arrived: 408 after it (a client
    trickling its body cannot hold a connection)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ConfigError(f"serve: {name} must be more than 0, got {value}")

    def body_limit(self, path: str) -> int:
        """The request body limit for a path: the upload's or the JSON one."""
        return self.max_body_bytes if path == "/v1/transcribe" else self.max_json_bytes
