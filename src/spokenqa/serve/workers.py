"""Where the slow work runs, off the event loop: `AsrProcess` (speech recognition in a separate
process, because pocketsphinx holds the GIL while it decodes) and `Service` (what the routes share:
the loaded QA model, the ASR process, the transcript store, and the capacity limiters that run
model and ASR calls in worker threads, `workers` at a time, with at most ``max_pending`` waiting)."""

import logging
import multiprocessing
import os
import re
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.exceptions import HTTPException

from spokenqa.audio.asr import AUDIO_FORMATS
from spokenqa.errors import AudioError
from spokenqa.serve.limits import Limits
from spokenqa.serve.store import StoredAudio, TranscriptStore

log = logging.getLogger(__name__)

AUDIO_TYPES = {"WAV": "audio/wav", "WAVEX": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg",
               "MPEG": "audio/mpeg", "AIFF": "audio/aiff"}


def _ignore_sigint() -> None:
    """In the ASR process: Ctrl-C (SIGINT to the whole process group) is the server's to handle;
    the server stops this process at shutdown."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class AsrProcess:
    """Speech recognition in one separate process (a ``ProcessPoolExecutor`` of 1 worker, spawn
    context), so that a decoder holding the GIL (pocketsphinx) never stalls the server's threads.

    ``start()`` creates the process and loads the engine's model there; ``transcribe(path)`` runs
    ``spokenqa.audio.asr.transcribe`` on a file there and returns the ``Transcript``; ``shutdown()``
    stops the process. The process is started on first use when ``start()`` was not called, and
    started again after it died (that request gets 503)."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def start(self) -> Future:
        """Start the process and load the engine there; the future is done when it is ready (or
        holds the AudioError of an engine that is not installed)."""
        from spokenqa.audio.asr import warm_up

        return self._executor().submit(warm_up, self.engine)

    def transcribe(self, path: str, max_seconds: float | None):
        """``spokenqa.audio.asr.transcribe(path, engine, max_seconds=...)`` in the ASR process (blocks the
        calling thread, not the GIL). Its AudioError comes back as is."""
        from spokenqa.audio.asr import transcribe

        pool = self._executor()
        try:
            return pool.submit(transcribe, path, engine=self.engine, max_seconds=max_seconds).result()
        except BrokenProcessPool:
            self._discard(pool)
            log.error("the ASR process died; starting a new one for the next request")
            raise HTTPException(503, "the speech recogniser stopped unexpectedly; retry shortly",
                                headers={"Retry-After": "1"}) from None

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class Service:
    """What the routes share: the loaded QA model, the ASR engine name and process, limits, the
    store, the archive (`serve --index`), and the limiters that keep model and ASR calls off the event loop and one (`workers`) at
    a time."""

    def __init__(self, qa, checkpoint: str, limits: Limits, engine: str, workers: int, archive=None) -> None:
        self.qa, self.checkpoint, self.limits, self.engine, self.workers = qa, checkpoint, limits, engine, workers
        self.archive = archive  # spokenqa.serve.archive.Archive, or None: no `--index`
        self.store = TranscriptStore(limits.max_transcripts, limits.max_stored_audio_bytes)
        self.asr = AsrProcess(engine)
        self.max_pending = limits.max_pending
        self.pending = 0
        self._limiters: dict[str, Any] = {}

    def _limiter(self, name: str):
        if name not in self._limiters:  # created inside the event loop (older anyio needs one)
            self._limiters[name] = anyio.CapacityLimiter(self.workers)
        return self._limiters[name]

    async def run(self, which: str, fn, *args, **kwargs) -> tuple[Any, float, float]:
        """`fn(*args, **kwargs)` in a worker thread behind the `which` limiter ('model' or 'asr').
        Returns its value, the milliseconds it waited for the limiter and the milliseconds it ran."""
        if self.pending >= self.max_pending:
            raise HTTPException(503, f"the server is busy ({self.pending} requests waiting); retry shortly",
                                headers={"Retry-After": "1"})
        self.pending += 1
        queued = time.perf_counter()

        def timed():
            started = time.perf_counter()
            value = fn(*args, **kwargs)
            return value, started, time.perf_counter()

        try:
            value, started, ended = await anyio.to_thread.run_sync(timed, limiter=self._limiter(which))
        finally:
            self.pending -= 1
        return value, round((started - queued) * 1000, 1), round((ended - started) * 1000, 1)

    def transcribe_bytes(self, data: bytes, filename: str, content_type: str | None) -> StoredAudio:
        """Runs in a worker thread: check the upload is audio of allowed length, transcribe it in
        the ASR process (which reads the temporary file)."""
        import soundfile as sf

        suffix = Path(filename).suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
        with tempfile.TemporaryDirectory(prefix="spokenqa-upload-") as tmp:
            path = os.path.join(tmp, "upload" + suffix)
            with open(path, "wb") as f:
                f.write(data)
            try:
                info = sf.info(path)
            except Exception:  # noqa: BLE001 - libsndfile raises several kinds for non-audio
                raise HTTPException(415, f"{filename}: not a readable audio file "
                                    f"(send {AUDIO_FORMATS})") from None
            if info.samplerate <= 0 or info.frames <= 0:
                raise HTTPException(422, f"{filename}: the audio has no samples")
            duration = info.frames / float(info.samplerate)
            if duration > self.limits.max_audio_seconds:
                raise HTTPException(422, f"{filename}: the audio lasts {duration:.1f} s, longer than "
                                    f"this server's limit of {self.limits.max_audio_seconds:g} s")
            try:
                transcript = self.asr.transcribe(path, max_seconds=self.limits.max_audio_seconds)
            except AudioError as e:
                raise AudioError(str(e).replace(path, filename)) from None
            except HTTPException:
                raise
            except Exception as e:  # the decoder failing on a malformed upload: the client's input;
                log.exception("ASR failed on upload %s", filename)  # logged in full for us
                raise AudioError(f"{filename}: the audio could not be transcribed ({type(e).__name__})") from None
        if content_type and content_type.startswith("audio/"):
            media_type = content_type.split(";")[0].strip()
        else:
            media_type = AUDIO_TYPES.get(info.format, "application/octet-stream")
        return StoredAudio(transcript, data, media_type, filename)
