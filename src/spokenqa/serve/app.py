"""The FastAPI app: `create_app` and the JSON routes.

    app = create_app("runs/demo/best")                            # loads the model once
    app = create_app("runs/demo/best", Limits(max_questions=4))   # spokenqa.serve.limits.Limits

(run it with `spokenqa.serve.server.serve`, i.e. `spokenqa serve`, or any ASGI server).

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
  Swagger UI over it and ``GET /``: the web page (both in `pages`).

With an archive (``create_app(..., index=...)``, ``spokenqa serve --index``), ``POST /v1/answer``
without ``context`` and ``transcript_id`` asks the whole archive, and `spokenqa.serve.archive`
adds ``POST /v1/search``, ``GET /v1/archive`` and ``GET /v1/documents/{id}/audio``.
"""

import asyncio
import logging
import os
import re
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated

import anyio.to_thread
from fastapi import FastAPI, File, Request, UploadFile
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from spokenqa import __version__
from spokenqa.checkpoint import resolve_checkpoint
from spokenqa.errors import ConfigError, SpokenQAError
from spokenqa.serve import pages
from spokenqa.serve.archive import Archive, add_archive_routes, check_index
from spokenqa.serve.handlers import add_error_handlers
from spokenqa.serve.limits import Limits
from spokenqa.serve.middleware import BodyLimit
from spokenqa.serve.ranges import ranged_bytes
from spokenqa.serve.schemas import (
    ID_PATTERN,
    AnswerOut,
    AnswerResponse,
    ArchiveAnswerResponse,
    ErrorOut,
    HealthOut,
    ResultOut,
    TranscribeResponse,
    answer_request_model,
    search_request_model,
)
from spokenqa.serve.workers import Service

log = logging.getLogger(__name__)

ERRORS = {code: {"model": ErrorOut} for code in (400, 404, 413, 415, 422, 503)}


def create_app(
    checkpoint: str | os.PathLike | None = None,
    limits: Limits | None = None,
    *,
    engine: str = "auto",
    workers: int = 1,
    device: str | None = None,
    threads: int | None = None,
    backend: str = "auto",
    quantize: str | None = None,
    qa=None,
    index: str | os.PathLike | None = None,
    calibration: str | os.PathLike | None = None,
    threshold: float | None = None,
) -> FastAPI:
    """The FastAPI app: loads `checkpoint` once (default: the shipped model; or uses the loaded
    `qa`) with `backend` / `quantize` on `device` with `threads` (spokenqa.backends), then serves
    the API and the page within `limits` (None: `Limits()`, the defaults). Uploads are
    transcribed by `engine` (auto: Whisper when it is installed, else pocketsphinx; resolved here,
    and /health names the one that runs); `workers` model calls (and as many ASR calls) run at a
    time. With `index` (a `spokenqa index build` file, opened for reading) it also answers over that archive
    (`spokenqa.serve.archive`), with the reader's `calibration` (default: its own) and refusing
    below `threshold` (default: the calibration's). Raises ConfigError for a folder that is not a checkpoint, an
    unknown engine or fewer than 1 worker, and ConfigError/DataError for what is not an index."""
    from spokenqa.audio.asr import check_engine, resolve_engine

    limits = Limits() if limits is None else limits
    check_engine(engine)
    if workers < 1:
        raise ConfigError(f"serve: workers must be at least 1, got {workers}")
    if index is not None:  # a bad index is told before the model loads
        check_index(index)
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"serve: threshold must be in [0, 1], got {threshold}")
    engine = resolve_engine(engine)  # after the checks: bad input gets its error alone
    if qa is None:
        from spokenqa.qa import QA

        checkpoint = resolve_checkpoint(checkpoint)
        qa = QA.load(checkpoint, device=device, threads=threads, backend=backend, quantize=quantize)
        qa.answer("is it ready", context="the model is ready.")  # first call pays the lazy set-up
    archive = None
    if index is not None:
        archive = Archive(index, qa, calibration, threshold)
        archive.warm_up()
    app = FastAPI(
        title="spokenqa",
        version=__version__,
        summary="Extractive question answering over speech transcripts and recordings",
        description=(
            "Ask questions over a transcript (`context`) or an uploaded recording "
            "(`POST /v1/transcribe`, then `transcript_id`). Every error is JSON: `{\"error\": \"...\"}`. "
            "The web page is at `/`."
        ),
        lifespan=_lifespan,
        docs_url=None,  # served by `pages` from local assets; FastAPI's would load them from a CDN
        redoc_url=None,  # ReDoc has no offline package here: not offered rather than half-working
    )
    app.state.service = Service(qa, str(checkpoint), limits, engine, workers, archive)
    app.add_middleware(BodyLimit, limit_for=limits.body_limit, timeout=limits.max_body_seconds)
    add_error_handlers(app)
    _add_api_routes(app, answer_request_model(limits, archive=archive is not None))
    add_archive_routes(app, search_request_model(limits))
    app.include_router(pages.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """The ASR process starts with the server and loads its model before the first request; it
    stops with the server."""
    service: Service = app.state.service
    try:
        await asyncio.wrap_future(service.asr.start())
    except SpokenQAError as e:  # an engine that is not installed: uploads get its 415
        log.warning("ASR engine %s: %s", service.engine, e)
    except Exception:  # the next upload starts a new process
        log.exception("the ASR process did not start")
        service.asr.shutdown()
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(service.asr.shutdown)
        if service.archive is not None:
            service.archive.close()


def _add_api_routes(app: FastAPI, AnswerRequest: type[BaseModel]) -> None:
    """The JSON routes, in the order the OpenAPI schema lists them. `AnswerRequest` is the answer
    request model with this app's limits."""

    async def answer(body: AnswerRequest, request: Request) -> AnswerResponse | ArchiveAnswerResponse:  # type: ignore[valid-type]
        service = request.app.state.service
        if body.over_archive:
            return await _answer_archive(service, body)
        return await _answer(service, body)

    app.add_api_route("/v1/answer", answer, methods=["POST"], response_model=AnswerResponse | ArchiveAnswerResponse,
                      responses=ERRORS, tags=["qa"],
                      summary="Answer questions over a transcript, or over the archive (serve --index)")
    app.add_api_route("/v1/transcribe", transcribe_upload, methods=["POST"], response_model=TranscribeResponse,
                      responses=ERRORS, tags=["audio"],
                      summary="Transcribe an uploaded recording (kept for /v1/answer and /v1/audio)")
    app.add_api_route("/v1/audio/{transcript_id}", audio, methods=["GET"], tags=["audio"],
                      responses={**ERRORS, 200: {"content": {"audio/*": {}}}},
                      summary="The uploaded audio of a transcript (supports Range)")
    app.add_api_route("/health", health, methods=["GET"], response_model=HealthOut, tags=["meta"],
                      summary="Status, model and limits")


async def _answer(service: Service, body) -> AnswerResponse:
    """``POST /v1/answer``: the questions over the pasted context or a stored transcript."""
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


async def _answer_archive(service: Service, body) -> ArchiveAnswerResponse:
    """``POST /v1/answer`` without a context: the questions over the server's archive."""
    archive = service.archive
    results, queued, elapsed = await service.run(
        "model", archive.answer, list(body.questions), body.top_k, passages=body.passages, mode=body.mode,
        fusion=body.fusion, weight=body.weight, threshold=body.threshold,
    )
    return ArchiveAnswerResponse(results=results, index=archive.path, elapsed_ms=elapsed, queued_ms=queued)


# The routes below have comments, not docstrings: FastAPI would publish a docstring in the schema.


# POST /v1/transcribe: transcribe the upload in the ASR process and keep both.
async def transcribe_upload(
    file: Annotated[UploadFile, File(description="a recording: WAV, FLAC, OGG or MP3, any rate")],
    request: Request,
) -> TranscribeResponse:
    service: Service = request.app.state.service
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


# GET /v1/audio/{transcript_id}: the stored upload, whole or the byte range asked for.
async def audio(transcript_id: str, request: Request):
    store = request.app.state.service.store
    item = store.get(transcript_id) if re.fullmatch(ID_PATTERN, transcript_id) else None
    if item is None:
        raise HTTPException(404, f"unknown transcript_id {transcript_id!r}")
    return ranged_bytes(item.audio, item.media_type, request.headers.get("range"))


# GET /health: status, the model and its runtime, the store's size, the queue, the limits.
async def health(request: Request) -> HealthOut:
    service: Service = request.app.state.service
    return HealthOut(status="ok", model=str(service.qa.cfg.model), checkpoint=service.checkpoint,
                     **service.qa.runtime.to_dict(), engine=service.engine, transcripts=len(service.store),
                     pending=service.pending, archive=None if service.archive is None else service.archive.path,
                     limits=asdict(service.limits))


def _safe_name(filename: str | None) -> str:
    name = os.path.basename(filename or "") or "upload"
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or "upload"


__all__ = ["create_app"]
