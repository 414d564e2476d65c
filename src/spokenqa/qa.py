"""Ask a trained model: questions over a transcript or an audio file -> answers with scores,
character spans and (for audio) times.

    qa = QA.load()  # the shipped model; or QA.load("runs/NAME/best")
    qa.answer("when was the lighthouse built", context=transcript)[0].text
    qa.answer(["who built it", "how tall is it"], audio="talk.wav", top_k=3)

`score` is a probability: the answer text's share of the probability pooled by the question's
n-best answers (spokenqa.decode: p(start) x p(end) per window, summed over the windows and token
spans that give the same text). It says how the model splits its belief among those candidates;
it is not the probability that the answer is right, and the scores of the `top_k` returned
answers sum to at most 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from spokenqa.backends import Runtime, load_for_inference
from spokenqa.checkpoint import resolve_checkpoint
from spokenqa.data import Example, check_questions, lower_keep_offsets
from spokenqa.decode import decode
from spokenqa.errors import ConfigError
from spokenqa.features import prepare_eval_features
from spokenqa.inference import predict_logits, resolve_precision


@dataclass
class QAAnswer:
    text: str
    score: float  # probability among the question's n-best spans (see module docstring)
    start: int  # character offsets into the transcript / context
    end: int
    raw_score: float  # n-best: log of the pooled p(start) x p(end); argmax: start + end logit
    start_s: float | None = None  # audio only: seconds
    end_s: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class QAResult:
    question: str
    answers: list[QAAnswer]


class QA:
    """A loaded checkpoint ready to answer; load once, ask many times (thread-safe for reads).

    `QA.load` owns its model: where it answers in bf16/fp16 it keeps the Linear weights in that
    dtype (same logits as autocast, less work per call), so its `precision` is fixed at load.
    `runtime` says what answers (backend, precision, device; spokenqa.backends); a model passed
    in directly is a torch model answering in its config's precision.
    """

    folder: Path | None = None  # the checkpoint folder `load` read (None: a model passed in)

    def __init__(self, model, tokenizer, cfg, device: torch.device, runtime: Runtime | None = None) -> None:
        self.model, self.tokenizer, self.cfg, self.device = model, tokenizer, cfg, device
        self.runtime = runtime or Runtime("torch", resolve_precision(cfg.mixed_precision, device), device)
        self.precision = self.runtime.precision

    @classmethod
    def load(cls, checkpoint: str | os.PathLike | None = None, device: str | None = None,
             threads: int | None = None, backend: str = "auto", quantize: str | None = None,
             cpu_bf16: Callable[[], bool] | None = None) -> QA:
        """Load `checkpoint` (a folder written by `spokenqa train` or `spokenqa export`; default:
        the model shipped with spokenqa) on `device` (default: cuda when present, else cpu).

        `backend`: "auto" (torch on a GPU or a CPU with native bf16, else ONNX Runtime fp32),
        "torch" or "onnx"; `quantize="int8"`: ONNX Runtime with dynamic int8 Linear layers
        (spokenqa.backends). `threads` sets torch's CPU threads, which ONNX Runtime uses too.
        `cpu_bf16` replaces the probe of this CPU's native bf16 (default
        `spokenqa.inference.cpu_supports_bf16`): `lambda: False` loads what a CPU without it
        gets (torch fp32, or ONNX Runtime fp32 under auto), e.g. to measure that on one with it."""
        if threads:
            torch.set_num_threads(threads)
        folder = resolve_checkpoint(checkpoint)
        model, tokenizer, cfg, runtime = load_for_inference(folder, backend, quantize, device, cpu_bf16)
        cfg = cfg.for_inference()  # the model's settings, none of its training run's
        qa = cls(model, tokenizer, cfg, runtime.device, runtime)
        qa.folder = Path(folder)
        return qa

    def answer(
        self,
        questions: str | list[str],
        context: str | None = None,
        audio: str | os.PathLike | None = None,
        top_k: int = 1,
        engine: str = "auto",
        transcript=None,
    ) -> list[QAResult]:
        """Answer each question over one context (text, audio file, or a `Transcript`).

        All questions share one batch of windows. For audio (or a Transcript) each answer also
        carries the seconds where it is said. `engine` transcribes `audio` (spokenqa.audio.asr:
        auto, the default, is Whisper when it is installed, else pocketsphinx).
        """
        if isinstance(questions, str):
            questions = [questions]
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        if sum(x is not None for x in (context, audio, transcript)) != 1:
            raise ConfigError("give exactly one of context, audio, transcript")
        if audio is not None:
            from spokenqa.audio.asr import transcribe

            transcript = transcribe(audio, engine=engine)
        if transcript is not None:
            context = transcript.text
            if not context.strip():
                raise ConfigError("no speech recognised: the transcript is empty")
        elif not context.strip():
            raise ConfigError("the context is empty")
        questions = check_questions(questions)
        lowered = lower_keep_offsets(context) if self.cfg.lowercase else context
        examples = [
            Example(str(i), "", lowered, lower_keep_offsets(q) if self.cfg.lowercase else q, ())
            for i, q in enumerate(questions)
        ]
        features, _ = prepare_eval_features(examples, self.tokenizer, self.cfg)
        start, end = predict_logits(
            self.model, features, self.tokenizer.pad_token_id, self.cfg.eval_batch_size, self.precision
        )
        predictions = decode(
            examples, features, start, end, self.cfg.decoder, max(self.cfg.n_best, top_k), self.cfg.max_answer_tokens
        )
        results = []
        for question, prediction in zip(questions, predictions):
            answers = []
            for span in prediction.nbest[:top_k]:
                times = transcript.time_span(span.start, span.end) if transcript and span.end > span.start else (None, None)
                answers.append(
                    QAAnswer(context[span.start : span.end], span.probability, span.start, span.end, span.score, *times)
                )
            results.append(QAResult(question, answers))
        return results
