"""Uploaded recordings kept in memory: `TranscriptStore`, a bounded LRU of transcripts and their
audio, so that ``transcript_id`` works for ``/v1/answer`` and ``/v1/audio`` after an upload. Its
bounds are two fields of `Limits`: ``max_transcripts`` and ``max_stored_audio_bytes``."""

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class StoredAudio:
    """One upload: its transcript, and the audio as it was sent (served by /v1/audio)."""

    transcript: Any  # spokenqa.audio.asr.Transcript
    audio: bytes
    media_type: str
    filename: str


class TranscriptStore:
    """Bounded in-memory LRU of transcripts and their audio: at most `max_items` entries and
    `max_bytes` of audio (the oldest go first; the newest is always kept)."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: OrderedDict[str, StoredAudio] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, item: StoredAudio) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = item
            self._bytes += len(item.audio)
            while len(self._items) > 1 and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old.audio)
        return key

    def get(self, key: str) -> StoredAudio | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def __len__(self) -> int:
        return len(self._items)
