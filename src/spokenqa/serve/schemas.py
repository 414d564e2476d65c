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


def answer_request_model(limits: Limits) -> type[BaseModel]:
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
