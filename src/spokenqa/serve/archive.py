"""The archive a server answers over (``spokenqa serve --index INDEX``): `Archive`, the index
opened for reading once, and its routes (`add_archive_routes`):

- ``POST /v1/search``: ``{"question", "k", "mode", "fusion", "weight"}`` -> the best passages,
  each with its document (and the document's ``audio_url`` when it is a recording on this disk);
- ``GET /v1/archive``: what the index holds (documents, passages, hours of audio);
- ``GET /v1/documents/{id}/audio``: a recording of the index, streamed from disk with ``Range``
  support, so the page can play an answer from its second. Only the paths of the index's audio
  documents are served: nothing else on the disk is reachable.

``POST /v1/answer`` without a ``context`` or ``transcript_id`` is the archive's too (in `app`).
A server without an index answers these routes with 404 saying how to start one that has it.

The index is a reader of a WAL database: ``spokenqa index add`` may write while the server
answers, and every question sees the last committed state (the vector matrix is reloaded when
the index's generation changes; `spokenqa.archive.store`).
"""


import mimetypes
import os
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from spokenqa.serve.ranges import RangedFile
from spokenqa.serve.schemas import (
    ArchiveAnswerOut,
    ArchiveOut,
    ArchiveResultOut,
    DocumentOut,
    ErrorOut,
    HitOut,
    SearchResponse,
)

AUDIO_KINDS = ("audio", "jsonl")  # documents whose path is the recording they were transcribed from
NO_ARCHIVE = "this server has no archive: start it with `spokenqa serve --index INDEX`"


class Archive:
    """An index and the reader over it, and what the routes ask of them. Every method but
    `close` touches SQLite or a model: the routes call them in worker threads, searches and
    answers behind the model's limiter (`Service.run`: the encoder is a model too)."""

    def __init__(self, index: str | os.PathLike[str], qa: Any, calibration: str | os.PathLike[str] | None = None,
                 threshold: float | None = None) -> None:
        from spokenqa.archive.read import ArchiveQA

        self.reader = ArchiveQA.open(index, qa=qa, calibration=calibration)
        self.store = self.reader.store
        self.path = self.store.path
        self.threshold = self.reader.calibration.threshold if threshold is None else threshold

    def warm_up(self) -> None:
        """Load the encoder and the vector matrix now, not on the first question."""
        self.search("is it ready", k=1)

    def search(self, question: str, k: int = 5, mode: str = "hybrid", fusion: str | None = None,
               weight: float | None = None) -> list[Any]:
        """`k` hits; `fusion` and `weight` not given: those the reader's calibration chose."""
        return self.reader.retrieve(question, k, mode, weight, fusion)

    def answer(self, questions: list[str], top_k: int, **settings: Any) -> list[ArchiveResultOut]:
        """`ArchiveQA.ask` with the request's settings (those not given: the reader's defaults,
        and this server's threshold) as the API shows the results."""
        settings = {k: v for k, v in settings.items() if v is not None}
        settings.setdefault("threshold", self.threshold)
        results = self.reader.ask(questions, top_k=top_k, **settings)
        docs = self.documents(a.document["id"] for r in results for a in r.answers)
        return [ArchiveResultOut(
            question=r.question, abstained=r.abstained, threshold=r.threshold,
            answers=[ArchiveAnswerOut(text=a.text, probability=a.probability, start=a.start, end=a.end,
                                      start_s=_seconds(a.start_s), end_s=_seconds(a.end_s),
                                      document=docs.get(a.document["id"]) or gone(a.document),
                                      passage=a.passage)
                     for a in r.answers])
            for r in results]

    def documents(self, ids) -> dict[int, DocumentOut]:
        """The documents with these ids as the API shows them."""
        return {i: document_out(d) for i, d in self.store.documents(sorted(set(ids))).items()}

    def hits(self, hits: list[Any]) -> list[HitOut]:
        docs = self.documents(h.passage.document_id for h in hits)
        out = []
        for h in hits:
            d = h.to_dict()
            out.append(HitOut(rank=d["rank"], document=docs.get(h.passage.document_id) or gone(d["document"]),
                              passage=d["passage"],
                              scores=d["scores"]))
        return out

    def audio_file(self, document_id: int) -> tuple[str, str] | None:
        """(path, media type) of the document's recording, when it is one on this disk."""
        doc = self.store.documents([document_id]).get(document_id)
        media = None if doc is None else audio_media_type(doc)
        return None if media is None else (doc.path, media)

    def stats(self) -> ArchiveOut:
        s = self.store.stats()
        return ArchiveOut(path=s.path, documents=s.documents, passages=s.passages, failures=s.failures,
                          audio_hours=s.audio_hours, kinds=s.kinds, encoder=s.encoder,
                          generation=self.store.generation(), threshold=self.threshold,
                          calibration=self.reader.calibration.path)

    def close(self) -> None:
        self.reader.close()


def check_index(index: str | os.PathLike[str]) -> None:
    """What is not an index (missing, not SQLite, another schema) as a one-line error, at once."""
    from spokenqa.archive.store import open_store

    open_store(index).close()


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def audio_media_type(doc: Any) -> str | None:
    """The media type of a document's recording: an audio document whose path is an existing file
    with an audio type (by its suffix); None for anything else."""
    if doc.kind not in AUDIO_KINDS or not os.path.isabs(doc.path):
        return None
    media = mimetypes.guess_type(doc.path, strict=False)[0]
    if media is None or not media.startswith("audio/") or not os.path.isfile(doc.path):
        return None
    return "audio/wav" if media in ("audio/x-wav", "audio/wave") else media


def document_name(doc: Any) -> str:
    """What the page calls a document: its file's name; a SQuAD paragraph, FILE.json#A/P."""
    if doc.kind == "squad" and "#" in doc.path:
        file, where = doc.path.rsplit("#", 1)
        return f"{Path(file).name}#{where}"
    return Path(doc.path).name or doc.path


def gone(document: dict[str, Any]) -> DocumentOut:
    """A document removed (`spokenqa index remove`) between finding its passage and looking it
    up: named from what the hit holds, with no recording to play."""
    from spokenqa.archive.store import StoredDocument

    path = document["path"]
    kind = "squad" if "#" in path else "text"  # what matters here: not a recording to serve
    return document_out(StoredDocument(document["id"], path, document["title"], kind, None))


def document_out(doc: Any) -> DocumentOut:
    playable = audio_media_type(doc) is not None
    return DocumentOut(id=doc.id, name=document_name(doc), path=doc.path, title=doc.title,
                       audio_url=f"/v1/documents/{doc.id}/audio" if playable else None)


def archive_of(request: Request) -> Archive:
    archive = request.app.state.service.archive
    if archive is None:
        raise HTTPException(404, NO_ARCHIVE)
    return archive


ERRORS = {code: {"model": ErrorOut} for code in (400, 404, 413, 422, 503)}


def add_archive_routes(app: FastAPI, SearchRequest: type[BaseModel]) -> None:
    """The archive's routes; `SearchRequest` is the search request model with this app's limits."""

    # POST /v1/search: the question's best passages.
    async def search(body: SearchRequest, request: Request) -> SearchResponse:  # type: ignore[valid-type]
        archive = archive_of(request)
        service = request.app.state.service

        def run():
            return archive.hits(archive.search(body.question, k=body.k, mode=body.mode, fusion=body.fusion,
                                               weight=body.weight))

        hits, queued, elapsed = await service.run("model", run)
        return SearchResponse(question=body.question, hits=hits, elapsed_ms=elapsed, queued_ms=queued)

    # GET /v1/archive: what the index holds.
    async def archive_stats(request: Request) -> ArchiveOut:
        archive = archive_of(request)
        return await anyio.to_thread.run_sync(archive.stats)

    # GET /v1/documents/{document_id}/audio: the recording, from disk, by range.
    async def document_audio(document_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], request: Request):
        archive = archive_of(request)
        found = await anyio.to_thread.run_sync(archive.audio_file, document_id)
        if found is None:
            raise HTTPException(404, f"document {document_id} has no recording on this server (not in "
                                "the index, not an audio document, or its file is gone)")
        return RangedFile(*found)

    app.add_api_route("/v1/search", search, methods=["POST"], response_model=SearchResponse, responses=ERRORS,
                      tags=["archive"], summary="The archive's passages that best match a question")
    app.add_api_route("/v1/archive", archive_stats, methods=["GET"], response_model=ArchiveOut,
                      responses=ERRORS, tags=["archive"], summary="What the server's archive holds")
    app.add_api_route("/v1/documents/{document_id}/audio", document_audio, methods=["GET"], tags=["archive"],
                      responses={**ERRORS, 200: {"content": {"audio/*": {}}}},
                      summary="A recording of the archive (supports Range)")


__all__ = ["AUDIO_KINDS", "Archive", "add_archive_routes", "audio_media_type", "check_index", "document_name"]
