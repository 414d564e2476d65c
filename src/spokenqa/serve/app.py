"""HTTP API and web page: ask questions over a transcript or an uploaded recording.

    app = create_app("runs/demo/best")          # loads the model once
    serve("runs/demo/best", "127.0.0.1", 8000)  # uvicorn; or: spokenqa serve --checkpoint DIR

Endpoints (JSON in and out; every bad input gets a 4xx with ``{"error": "..."}``):

- ``POST /v1/answer``: ``{"questions": [...], "context": "..." | "transcript_id": "...",
  "top_k": 1}`` -> for each question its ``top_k`` answers with ``text``, ``score`` (probability
  among the question's n-best spans), character ``start``/``end`` in the context and, when the
  context is a transcript of uploaded audio, ``start_s``/``end_s`` in seconds.
- ``POST /v1/transcribe``: multipart upload (field ``file``) of a recording -> the transcript with
  word times and a ``transcript_id``. Transcripts and their audio are kept in memory in a bounded
  LRU store (oldest dropped first), so the id works until it is pushed out.
- ``GET /v1/audio/{transcript_id}``: the uploaded audio as it was sent (byte ranges supported, so
  a browser can seek in it).
- ``GET /health``: status, model, limits. ``GET /openapi.json``: the schema; ``GET /docs``:
  Swagger UI over it, its script and style served from here (package ``swagger-ui-bundle-v2``),
  not from a CDN, so the docs work offline like the page.
- ``GET /``: the web page (``static/index.html``, ``app.js``, ``style.css``; nothing external).

Limits: request bodies are capped by a middleware that answers 413 before reading a body whose
Content-Length is over the limit (and stops reading a chunked one as soon as it is): audio uploads
to ``max_body_bytes``, other requests to ``max_json_bytes``; and answers 408 to a body that has not
all arrived ``max_body_seconds`` after its headers (a slowloris-style trickle). Audio length,
question count and length, context length and ``top_k`` are checked by the request models (422).

The model and the ASR engine each run behind a capacity limiter of ``workers`` (default 1, i.e. a
lock): the event loop never waits for them, requests queue, and more than ``max_pending`` queued
requests are turned away with 503. The model runs in worker threads; the ASR runs in a separate
process (``AsrProcess``: one spawned worker, started and warmed up with the app, stopped at its
shutdown), because pocketsphinx holds the GIL while it decodes and would stall the event loop and
the model thread for as long as a segment takes.
"""

import asyncio
import logging
import multiprocessing
import os
import re
import secrets
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from spokenqa.errors import AudioError, ConfigError, SpokenQAError

try:
    import anyio
    import anyio.to_thread
    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from pydantic import (
        BaseModel,
        ConfigDict,
        Field,
        StringConstraints,
        field_validator,
        model_validator,
    )
    from starlette.exceptions import HTTPException
except ImportError as e:  # pragma: no cover - optional dependency
    raise ConfigError(
        f"serving needs FastAPI ({e.name} is missing): pip install fastapi uvicorn python-multipart"
    ) from None

log = logging.getLogger("spokenqa.serve.app")

STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
PAGE_HEADERS = {
    # Everything the page needs comes from this server.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Swagger UI at /docs: FastAPI's page with the assets of the swagger-ui-bundle-v2 package (no CDN).
# The page's one inline script starts Swagger UI; everything else must come from this server.
DOCS_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
              "favicon-32x32.png": "image/png"}
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
AUDIO_TYPES = {"WAV": "audio/wav", "WAVEX": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg",
               "MPEG": "audio/mpeg", "AIFF": "audio/aiff"}
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Defaults suit one CPU box and recordings of a few minutes."""

    max_body_bytes: int = 32 * 2**20  # POST /v1/transcribe (the audio upload)
    max_json_bytes: int = 2**20  # every other request
    max_audio_seconds: float = 600.0
    max_questions: int = 16
    max_question_chars: int = 500
    max_context_chars: int = 20_000
    max_top_k: int = 20
    max_transcripts: int = 32  # LRU store of transcripts + their audio
    max_stored_audio_bytes: int = 256 * 2**20
    max_pending: int = 64  # requests queued for the model or ASR before 503
    max_body_seconds: float = 120.0  # to receive a whole request body, from its headers (408 after)

    def check(self) -> "Limits":
        for name, value in asdict(self).items():
            if not value > 0:
                raise ConfigError(f"serve: {name} must be more than 0, got {value}")
        return self


# --------------------------------------------------------------------------------------------
# Request and response models


class AnswerOut(BaseModel):
    text: str = Field(description="the answer, sliced from the context")
    score: float = Field(description="probability among the question's n-best spans (0-1)")
    start: int = Field(description="character offset of the answer in the context")
    end: int = Field(description="character offset just past the answer")
    raw_score: float = Field(description="n-best decoder: natural log of the answer text's pooled probability p(start) x p(end) over windows and token spans; argmax decoder: start logit + end logit")
    start_s: float | None = Field(None, description="audio only: second the answer starts")
    end_s: float | None = Field(None, description="audio only: second the answer ends")


class ResultOut(BaseModel):
    question: str
    answers: list[AnswerOut]


class AnswerResponse(BaseModel):
    results: list[ResultOut]
    transcript_id: str | None = None
    elapsed_ms: float = Field(description="milliseconds the model took")
    queued_ms: float = Field(description="milliseconds the request waited for the model")


class WordOut(BaseModel):
    text: str
    start_char: int
    end_char: int
    start_s: float
    end_s: float


class TranscribeResponse(BaseModel):
    transcript_id: str
    text: str
    duration: float
    engine: str
    words: list[WordOut]
    audio_url: str
    elapsed_ms: float = Field(description="milliseconds the ASR took")
    queued_ms: float = Field(description="milliseconds the request waited for the ASR")


class ErrorOut(BaseModel):
    error: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    model: str
    checkpoint: str
    backend: str  # torch | onnx
    precision: str  # bf16 | fp16 | fp32 | int8
    device: str
    engine: str
    transcripts: int
    pending: int
    limits: dict[str, Any]


def _answer_request_model(limits: Limits) -> type[BaseModel]:
    Question = Annotated[str, StringConstraints(max_length=limits.max_question_chars)]

    class AnswerRequest(BaseModel):
        """Questions over one context: pasted text (`context`) or an uploaded recording's
        transcript (`transcript_id` from POST /v1/transcribe)."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [
                {"context": "the bridge was built in nineteen thirty two.",
                 "questions": ["when was the bridge built"], "top_k": 3},
            ]},
        )
        questions: list[Question] = Field(
            min_length=1, max_length=limits.max_questions,
            description=f"1 to {limits.max_questions} questions, each up to {limits.max_question_chars} characters",
        )
        context: str | None = Field(
            None, max_length=limits.max_context_chars,
            description="the transcript to answer over (lower case, numbers as words works best)",
        )
        transcript_id: str | None = Field(
            None, pattern=ID_PATTERN, description="a transcript from POST /v1/transcribe instead of `context`"
        )
        top_k: int = Field(1, ge=1, le=limits.max_top_k, description="answers per question, best first")

        @field_validator("questions")
        @classmethod
        def _no_blank_question(cls, questions: list[str]) -> list[str]:
            for i, q in enumerate(questions):
                if not q.strip():
                    raise ValueError(f"question {i + 1} is empty")
            return questions

        @model_validator(mode="after")
        def _one_source(self):
            if (self.context is None) == (self.transcript_id is None):
                raise ValueError(
                    "give exactly one of `context` (the transcript text) or `transcript_id` "
                    "(from POST /v1/transcribe)"
                )
            if self.context is not None and not self.context.strip():
                raise ValueError("`context` is empty")
            return self

    return AnswerRequest


# --------------------------------------------------------------------------------------------
# State: the model, the transcript store


@dataclass
class StoredAudio:
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
    store, and the limiters that keep model and ASR calls off the event loop and one (`workers`) at
    a time."""

    def __init__(self, qa, checkpoint: str, limits: Limits, engine: str, workers: int) -> None:
        self.qa, self.checkpoint, self.limits, self.engine, self.workers = qa, checkpoint, limits, engine, workers
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
                                    "(send WAV, FLAC, OGG or MP3)") from None
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


# --------------------------------------------------------------------------------------------
# Errors and body limit


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _where(loc) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "form")]
    text = ""
    for p in parts:
        if not isinstance(p, int) and not (str(p).isprintable() and len(str(p)) <= 40):
            p = repr(str(p)[:40])  # a client's unknown key: keep the message one short line
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            pos = err.get("loc", ("body", "?"))[-1]
            return 400, f"the request body is not valid JSON: {reason} (at character {pos})"
    messages = []
    for err in errors[:5]:
        where, msg = _where(err.get("loc", ())), str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "missing" and not where:
            messages.append("the request needs a JSON body")
        elif err.get("type") == "model_attributes_type" or (err.get("type") == "dict_type" and not where):
            messages.append("the request body must be a JSON object")
        else:
            messages.append(f"{where}: {msg}" if where else msg)
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "; ".join(messages) + more


class BodyLimit:
    """ASGI middleware: answer 413 to a request whose body is over the limit for its path —
    at once when its Content-Length says so (nothing of the body is read), or as soon as a body
    without one (chunked) passes the limit — and 408 to one whose body has not all arrived
    within `timeout` seconds of the request's headers (a client trickling its body, slowloris
    style, would otherwise hold its connection for as long as it likes). Both close the
    connection."""

    def __init__(self, app, limit_for, timeout: float | None = None) -> None:
        self.app, self.limit_for, self.timeout = app, limit_for, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await error_response(400, "bad Content-Length header")(scope, receive, send)
            if size > limit:
                return await self._too_large(scope, receive, send, limit, size)
        state = {"received": 0, "over": False, "started": False, "complete": False}
        deadline = None if self.timeout is None else time.monotonic() + self.timeout

        async def refuse(response: Response):
            state["over"] = True
            if not state["started"]:
                state["started"] = True
                await response(scope, receive, send)
            return {"type": "http.disconnect"}  # the app stops reading here

        async def limited_receive():
            if state["over"]:
                return {"type": "http.disconnect"}
            if deadline is None or state["complete"]:
                message = await receive()
            else:
                with anyio.move_on_after(deadline - time.monotonic()) as waited:
                    message = await receive()
                if waited.cancelled_caught:
                    return await refuse(error_response(
                        408, f"the request body did not arrive within {self.timeout:g} s; send it faster",
                        {"Connection": "close"}))
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["complete"] = not message.get("more_body", False)
                if state["received"] > limit:
                    return await refuse(self._too_large_response(scope, limit, None))
            return message

        async def guarded_send(message):
            if state["over"]:
                return  # our 413 or 408 went out instead
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise

    @staticmethod
    def _too_large_response(scope, limit: int, size: int | None) -> JSONResponse:
        what = f"{size} bytes" if size is not None else "more than that"
        message = f"the request body is too large: the limit for {scope['path']} is {limit} bytes, got {what}"
        return error_response(413, message, {"Connection": "close"})

    @classmethod
    async def _too_large(cls, scope, receive, send, limit: int, size: int | None) -> None:
        await cls._too_large_response(scope, limit, size)(scope, receive, send)


# --------------------------------------------------------------------------------------------
# The app


def create_app(
    checkpoint: str | os.PathLike | None = None,
    max_body_bytes: int = Limits.max_body_bytes,
    max_audio_seconds: float = Limits.max_audio_seconds,
    max_questions: int = Limits.max_questions,
    max_context_chars: int = Limits.max_context_chars,
    *,
    max_json_bytes: int = Limits.max_json_bytes,
    max_question_chars: int = Limits.max_question_chars,
    max_top_k: int = Limits.max_top_k,
    max_transcripts: int = Limits.max_transcripts,
    max_pending: int = Limits.max_pending,
    max_body_seconds: float = Limits.max_body_seconds,
    engine: str = "pocketsphinx",
    workers: int = 1,
    device: str | None = None,
    threads: int | None = None,
    backend: str = "auto",
    quantize: str | None = None,
    qa=None,
) -> FastAPI:
    """The FastAPI app: loads `checkpoint` once (default: the shipped model; or uses the loaded
    `qa`) with `backend` / `quantize` (spokenqa.backends), then serves the API and the page.
    Raises ConfigError for a folder that is not a checkpoint or a bad limit."""
    from spokenqa.audio.asr import ENGINES
    from spokenqa.checkpoint import resolve_checkpoint

    if engine not in ENGINES:
        raise ConfigError(f"unknown ASR engine {engine!r} (choose from {', '.join(ENGINES)})")
    if workers < 1:
        raise ConfigError(f"serve: workers must be at least 1, got {workers}")
    limits = Limits(
        max_body_bytes=max_body_bytes, max_json_bytes=max_json_bytes, max_audio_seconds=max_audio_seconds,
        max_questions=max_questions, max_question_chars=max_question_chars, max_context_chars=max_context_chars,
        max_top_k=max_top_k, max_transcripts=max_transcripts,
        max_stored_audio_bytes=max(Limits.max_stored_audio_bytes, 4 * max_body_bytes), max_pending=max_pending,
        max_body_seconds=max_body_seconds,
    ).check()
    if qa is None:
        from spokenqa.qa import QA

        checkpoint = resolve_checkpoint(checkpoint)
        qa = QA.load(checkpoint, device=device, threads=threads, backend=backend, quantize=quantize)
        qa.answer("is it ready", context="the model is ready.")  # first call pays the lazy set-up
    service = Service(qa, str(checkpoint), limits, engine, workers)
    AnswerRequest = _answer_request_model(limits)
    errors = {code: {"model": ErrorOut} for code in (400, 404, 413, 415, 422, 503)}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The ASR process starts with the server and loads its model before the first request.
        try:
            await asyncio.wrap_future(service.asr.start())
        except SpokenQAError as e:  # an engine that is not installed: uploads get its 415
            log.warning("ASR engine %s: %s", engine, e)
        except Exception:  # the next upload starts a new process
            log.exception("the ASR process did not start")
            service.asr.shutdown()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.asr.shutdown)

    app = FastAPI(
        title="spokenqa",
        version=_version(),
        summary="Extractive question answering over speech transcripts and recordings",
        description=(
            "Ask questions over a transcript (`context`) or an uploaded recording "
            "(`POST /v1/transcribe`, then `transcript_id`). Every error is JSON: `{\"error\": \"...\"}`. "
            "The web page is at `/`."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below from local assets; FastAPI's would load them from a CDN
        redoc_url=None,  # ReDoc has no offline package here: not offered rather than half-working
    )
    app.state.service = service
    app.add_middleware(
        BodyLimit, limit_for=lambda path: limits.max_body_bytes if path == "/v1/transcribe" else limits.max_json_bytes,
        timeout=limits.max_body_seconds,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, message = _validation_message(exc)
        return error_response(status, message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body cannot be parsed: send UTF-8 JSON (or multipart for /v1/transcribe)"
        elif exc.status_code == 405:
            allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}" + (f" (use {allowed})" if allowed else "")
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(SpokenQAError)
    async def _spokenqa(request: Request, exc: SpokenQAError):
        return error_response(415 if isinstance(exc, AudioError) else 422, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.post("/v1/answer", response_model=AnswerResponse, responses=errors, tags=["qa"],
              summary="Answer questions over a transcript")
    async def answer(body: AnswerRequest) -> AnswerResponse:  # type: ignore[valid-type]
        transcript = None
        if body.transcript_id is not None:
            item = service.store.get(body.transcript_id)
            if item is None:
                raise HTTPException(404, f"unknown transcript_id {body.transcript_id!r} (expired or never "
                                    "made; upload the audio again with POST /v1/transcribe)")
            transcript = item.transcript
        results, queued, elapsed = await service.run(
            "model", service.qa.answer, list(body.questions),
            context=None if transcript is not None else body.context, transcript=transcript, top_k=body.top_k,
        )
        out = []
        for r in results:
            answers = []
            for a in r.answers:
                d = a.to_dict()
                for key in ("start_s", "end_s"):
                    d[key] = None if d[key] is None else round(float(d[key]), 3)
                answers.append(AnswerOut(**d))
            out.append(ResultOut(question=r.question, answers=answers))
        return AnswerResponse(results=out, transcript_id=body.transcript_id, elapsed_ms=elapsed, queued_ms=queued)

    @app.post("/v1/transcribe", response_model=TranscribeResponse, responses=errors, tags=["audio"],
              summary="Transcribe an uploaded recording (kept for /v1/answer and /v1/audio)")
    async def transcribe_upload(
        file: Annotated[UploadFile, File(description="a recording: WAV, FLAC, OGG or MP3, any rate")],
    ) -> TranscribeResponse:
        data = await file.read()
        name = _safe_name(file.filename)
        if not data:
            raise HTTPException(422, f"{name}: the uploaded file is empty")
        item, queued, elapsed = await service.run("asr", service.transcribe_bytes, data, name, file.content_type)
        key = service.store.add(item)
        t = item.transcript.to_dict()
        return TranscribeResponse(transcript_id=key, text=t["text"], duration=t["duration"], engine=t["engine"],
                                  words=t["words"], audio_url=f"/v1/audio/{key}", elapsed_ms=elapsed,
                                  queued_ms=queued)

    @app.get("/v1/audio/{transcript_id}", tags=["audio"], responses={**errors, 200: {"content": {"audio/*": {}}}},
             summary="The uploaded audio of a transcript (supports Range)")
    async def audio(transcript_id: str, request: Request):
        item = service.store.get(transcript_id) if re.fullmatch(ID_PATTERN, transcript_id) else None
        if item is None:
            raise HTTPException(404, f"unknown transcript_id {transcript_id!r}")
        return _ranged(item.audio, item.media_type, request.headers.get("range"))

    @app.get("/health", response_model=HealthOut, tags=["meta"], summary="Status, model and limits")
    async def health() -> HealthOut:
        return HealthOut(status="ok", model=str(service.qa.cfg.model), checkpoint=service.checkpoint,
                         **service.qa.runtime.to_dict(), engine=service.engine, transcripts=len(service.store),
                         pending=service.pending, limits=asdict(limits))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs():
        from fastapi.openapi.docs import get_swagger_ui_html

        _swagger_ui_folder()  # a missing package is a 404 naming it, not a blank page
        page = get_swagger_ui_html(
            openapi_url="/openapi.json", title="spokenqa API", swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css", swagger_favicon_url="/docs/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # Swagger UI's default sends the schema out
        )
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get("/docs/{name}", include_in_schema=False)
    async def docs_file(name: str):
        if name not in DOCS_FILES:
            raise HTTPException(404, f"no such file: /docs/{name}")
        return FileResponse(_swagger_ui_folder() / name, media_type=DOCS_FILES[name], headers=DOCS_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in PAGE_FILES:
            raise HTTPException(404, f"no such file: /static/{name}")
        return FileResponse(STATIC / name, media_type=PAGE_FILES[name], headers=PAGE_HEADERS)

    return app


def _swagger_ui_folder() -> Path:
    """The Swagger UI files of the swagger-ui-bundle-v2 package (a dependency of spokenqa)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        raise HTTPException(404, "the API docs need the swagger-ui-bundle-v2 package (pip install "
                                 "swagger-ui-bundle-v2); the schema is at /openapi.json") from None
    return Path(swagger_ui_path)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("spokenqa")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "0"


def _safe_name(filename: str | None) -> str:
    name = os.path.basename(filename or "") or "upload"
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or "upload"


def _ranged(data: bytes, media_type: str, range_header: str | None) -> Response:
    """The bytes, or the single byte range asked for (206; 416 when it is outside)."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header or "")
    if not m or not (m[1] or m[2]):
        return Response(data, media_type=media_type, headers=headers)
    if m[1]:
        start, end = int(m[1]), (int(m[2]) if m[2] else size - 1)
    else:
        start, end = max(0, size - int(m[2])), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return error_response(416, f"range {range_header!r} is outside the {size} bytes",
                              {"Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)


# --------------------------------------------------------------------------------------------
# Running it


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one). ConfigError when it cannot be."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be in 0-65535, got {port}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: FastAPI, log_level: str, access_log: bool):
    try:
        import uvicorn
    except ImportError:  # pragma: no cover
        raise ConfigError("serving needs uvicorn: pip install uvicorn") from None
    return uvicorn, uvicorn.Config(app, log_level=log_level, access_log=access_log, server_header=False,
                                   timeout_keep_alive=5, limit_concurrency=256)


def serve(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    access_log: bool = True,
    **app_options,
) -> None:
    """Load the model (default: the shipped one) and serve the API and page with uvicorn until
    interrupted (Ctrl-C). `app_options` go to `create_app` (limits, engine, threads...)."""
    from spokenqa.checkpoint import resolve_checkpoint

    checkpoint = resolve_checkpoint(checkpoint)
    sock = bind_socket(host, port)
    try:
        app = create_app(checkpoint, **app_options)
        uvicorn, config = _uvicorn_config(app, log_level, access_log)
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(f"spokenqa: serving {checkpoint} ({app.state.service.qa.runtime}) at http://{shown}:{bound[1]}/ "
              "(API docs: /docs)", flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """Run an app with uvicorn in a daemon thread on a free loopback port (tests, benchmarks):

        with BackgroundServer(create_app(ckpt)) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.url = ""

    def __enter__(self) -> "BackgroundServer":
        self._sock = bind_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        uvicorn, config = _uvicorn_config(self.app, self.log_level, access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


__all__ = ["BackgroundServer", "Limits", "TranscriptStore", "bind_socket", "create_app", "serve"]
