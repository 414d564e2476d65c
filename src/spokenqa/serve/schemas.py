"""The JSON the API takes and gives: pydantic models, which FastAPI also turns into the OpenAPI
schema at /openapi.json. The answer request's bounds come from the server's `Limits`, so its model
is built per app (`answer_request_model`); the others are fixed."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from spokenqa.serve.limits import Limits

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""A transcript id: what `TranscriptStore.add` makes (``secrets.token_urlsafe``), with room."""


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


class DocumentOut(BaseModel):
    id: int = Field(description="the document's id in the index")
    name: str = Field(description="the file's name (a SQuAD paragraph: FILE.json#ARTICLE/PARAGRAPH)")
    path: str = Field(description="the indexed path on the server (an audio file, a transcript, FILE.json#A/P)")
    title: str | None = None
    audio_url: str | None = Field(None, description="the recording (GET, Range supported); null when the "
                                  "document is not an audio file on the server's disk")


class PassageOut(BaseModel):
    id: int
    ordinal: int = Field(description="0, 1, ...: the passage's place in its document")
    text: str
    char_start: int = Field(description="where the passage starts in its document's text (characters)")
    char_end: int
    start_s: float | None = Field(None, description="second of the recording the passage starts at (null: no times)")
    end_s: float | None = None


class ScoresOut(BaseModel):
    bm25: float | None = Field(description="FTS5 BM25, higher is better; null: not among BM25's candidates")
    dense: float | None = Field(description="cosine similarity of the question and passage vectors; null in bm25 mode")
    fused: float = Field(description="the score the hits are ranked by")


class HitOut(BaseModel):
    rank: int
    document: DocumentOut
    passage: PassageOut
    scores: ScoresOut


class SearchResponse(BaseModel):
    question: str
    hits: list[HitOut]
    elapsed_ms: float = Field(description="milliseconds the search took")
    queued_ms: float = Field(description="milliseconds the request waited for the model")


class ArchiveOut(BaseModel):
    path: str
    documents: int
    passages: int
    failures: int = Field(description="inputs that could not be indexed")
    audio_hours: float
    kinds: dict[str, int] = Field(description="documents by kind: audio, jsonl, text, squad")
    encoder: str
    generation: int = Field(description="changes whenever the index does (`spokenqa index add` while serving)")
    threshold: float = Field(description="the probability an answer needs by default, else \"not in this archive\"")
    calibration: str | None = Field(description="the reader's calibration file; null: none, so the "
                                    "probabilities are sigmoid scores, not calibrated")


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
    archive: str | None = Field(None, description="the index this server answers over (`serve --index`), or null")
    limits: dict[str, Any]


class ArchiveAnswerOut(BaseModel):
    text: str = Field(description="the answer, sliced from its passage")
    probability: float = Field(description="calibrated probability that the answer is right (0-1)")
    start: int = Field(description="character offset of the answer in the passage's text")
    end: int = Field(description="character offset just past the answer in the passage's text")
    start_s: float | None = Field(None, description="second of the recording the answer starts at "
                                  "(null: a document without times)")
    end_s: float | None = Field(None, description="second of the recording the answer ends at")
    document: DocumentOut
    passage: PassageOut


class ArchiveResultOut(BaseModel):
    question: str
    abstained: bool = Field(description="true: not in this archive (no answer's probability reached "
                            "`threshold`); `answers` is then empty")
    threshold: float = Field(description="the probability an answer needed")
    answers: list[ArchiveAnswerOut] = Field(description="best first, at most `top_k`")


class ArchiveAnswerResponse(BaseModel):
    results: list[ArchiveResultOut]
    index: str = Field(description="the archive answered over")
    elapsed_ms: float = Field(description="milliseconds retrieval and the model took")
    queued_ms: float = Field(description="milliseconds the request waited for the model")


ARCHIVE_FIELDS = ("passages", "mode", "fusion", "weight", "threshold")
"""The answer request's fields that only apply over the archive (no context, no transcript_id)."""


def answer_request_model(limits: Limits, archive: bool = False) -> type[BaseModel]:
    """The answer request with these limits; `archive`: the server has an index, so a request
    without `context` and `transcript_id` is asked of it."""
    Question = Annotated[str, StringConstraints(max_length=limits.max_question_chars)]
    one = ("give exactly one of `context` (the transcript text) or `transcript_id` (from POST "
           "/v1/transcribe)")
    both = ("give `context` or `transcript_id`, not both (or neither, to ask the archive)" if archive
            else one)

    class AnswerRequest(BaseModel):
        """Questions over one context: pasted text (`context`) or an uploaded recording's
        transcript (`transcript_id` from POST /v1/transcribe); or, on a server started with
        `--index`, neither: over the whole archive (`passages`, `mode`, `fusion`, `weight`,
        `threshold` apply there)."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [
                {"context": "the bridge was built in nineteen thirty two.",
                 "questions": ["when was the bridge built"], "top_k": 3},
                {"questions": ["when was the bridge built"], "top_k": 3, "passages": 5},
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
        passages: int | None = Field(None, ge=1, le=limits.max_passages,
                                     description="archive: passages retrieved and read per question (default 5)")
        mode: Literal["hybrid", "bm25", "dense"] | None = Field(None, description="archive: retrieval (default hybrid)")
        fusion: Literal["rrf", "score"] | None = Field(None, description="archive, hybrid: default the calibration's")
        weight: float | None = Field(None, ge=0, le=1, description="archive, hybrid: the dense share "
                                     "(default the calibration's)")
        threshold: float | None = Field(None, ge=0, le=1, description="archive: the probability an answer needs, "
                                        "else \"not in this archive\" (default the server's)")

        @field_validator("questions")
        @classmethod
        def _no_blank_question(cls, questions: list[str]) -> list[str]:
            for i, q in enumerate(questions):
                if not q.strip():
                    raise ValueError(f"question {i + 1} is empty")
            return questions

        @model_validator(mode="after")
        def _one_source(self):
            if self.context is not None and self.transcript_id is not None:
                raise ValueError(both)
            if self.context is None and self.transcript_id is None:
                if not archive:
                    raise ValueError(f"{one}; this server has no archive to ask instead (start it with --index)")
            else:
                given = [f for f in ARCHIVE_FIELDS if getattr(self, f) is not None]
                if given:
                    raise ValueError(f"{', '.join(given)}: only over the archive (without `context` or "
                                     "`transcript_id`)")
            if self.context is not None and not self.context.strip():
                raise ValueError("`context` is empty")
            return self

        @property
        def over_archive(self) -> bool:
            return self.context is None and self.transcript_id is None

    return AnswerRequest


def search_request_model(limits: Limits) -> type[BaseModel]:
    class SearchRequest(BaseModel):
        """One question over the server's archive (`spokenqa serve --index`): its best passages."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"question": "when was the bridge built", "k": 5, "mode": "hybrid"}]},
        )
        question: Annotated[str, StringConstraints(max_length=limits.max_question_chars)] = Field(
            description=f"up to {limits.max_question_chars} characters")
        k: int = Field(5, ge=1, le=limits.max_search_k, description="passages, best first")
        mode: Literal["hybrid", "bm25", "dense"] = Field("hybrid", description="BM25, dense vectors, or both fused")
        fusion: Literal["rrf", "score"] | None = Field(
            None, description="hybrid: reciprocal-rank or min-max score fusion (default: the calibration's)")
        weight: float | None = Field(None, ge=0, le=1, description="hybrid: the dense share (default: the calibration's)")

        @field_validator("question")
        @classmethod
        def _no_blank_question(cls, question: str) -> str:
            if not question.strip():
                raise ValueError("the question is empty")
            return " ".join(question.split())

    return SearchRequest
