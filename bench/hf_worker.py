"""The Hugging Face side of the benchmarks, run by the transformers-4.57 venv (.venv-hf457).

It must not import spokenqa: it is what a user of plain transformers would write.

    train    the run_qa.py recipe: AutoModelForQuestionAnswering + Trainer, windows padded to
             max_length (384) with doc_stride 128, `prepare_train_features` as the example writes it
    eval     transformers.pipeline("question-answering") over a list of questions
    latency  the pipeline on one question, and how its cost grows with questions and context
    load     the pipeline's load time in a fresh process

Each command prints one JSON line last on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# the timing helpers; _common imports nothing but the standard library until a helper needs more
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

# --- train: the run_qa.py recipe --------------------------------------------------------------


def make_prepare_train_features(tokenizer, max_seq_length: int, doc_stride: int, pad_to_max_length: bool = True):
    """`prepare_train_features` of transformers/examples/pytorch/question-answering/run_qa.py."""
    question_column_name, context_column_name, answer_column_name = "question", "context", "answers"
    pad_on_right = tokenizer.padding_side == "right"

    def prepare_train_features(examples):
        # Some of the questions have lots of whitespace on the left, which is not useful and will make the
        # truncation of the context fail (the tokenized question will take a lots of space).
        examples[question_column_name] = [q.lstrip() for q in examples[question_column_name]]
        tokenized_examples = tokenizer(
            examples[question_column_name if pad_on_right else context_column_name],
            examples[context_column_name if pad_on_right else question_column_name],
            truncation="only_second" if pad_on_right else "only_first",
            max_length=max_seq_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length" if pad_to_max_length else False,
        )
        sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
        offset_mapping = tokenized_examples.pop("offset_mapping")
        tokenized_examples["start_positions"] = []
        tokenized_examples["end_positions"] = []
        for i, offsets in enumerate(offset_mapping):
            input_ids = tokenized_examples["input_ids"][i]
            if tokenizer.cls_token_id in input_ids:
                cls_index = input_ids.index(tokenizer.cls_token_id)
            elif tokenizer.bos_token_id in input_ids:
                cls_index = input_ids.index(tokenizer.bos_token_id)
            else:
                cls_index = 0
            sequence_ids = tokenized_examples.sequence_ids(i)
            sample_index = sample_mapping[i]
            answers = examples[answer_column_name][sample_index]
            if len(answers["answer_start"]) == 0:
                tokenized_examples["start_positions"].append(cls_index)
                tokenized_examples["end_positions"].append(cls_index)
            else:
                start_char = answers["answer_start"][0]
                end_char = start_char + len(answers["text"][0])
                token_start_index = 0
                while sequence_ids[token_start_index] != (1 if pad_on_right else 0):
                    token_start_index += 1
                token_end_index = len(input_ids) - 1
                while sequence_ids[token_end_index] != (1 if pad_on_right else 0):
                    token_end_index -= 1
                if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
                    tokenized_examples["start_positions"].append(cls_index)
                    tokenized_examples["end_positions"].append(cls_index)
                else:
                    while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                        token_start_index += 1
                    tokenized_examples["start_positions"].append(token_start_index - 1)
                    while offsets[token_end_index][1] >= end_char:
                        token_end_index -= 1
                    tokenized_examples["end_positions"].append(token_end_index + 1)
        return tokenized_examples

    return prepare_train_features


def _train_dataset(rows: list[dict], prepare):
    """`raw_datasets["train"].map(prepare_train_features, batched=True, remove_columns=...)` as
    run_qa.py does; without the `datasets` package (the GPU image lacks it) the same function runs
    over the same 1,000-row batches and a list of dicts stands in for the Dataset."""
    try:
        from datasets import Dataset

        ds = Dataset.from_list(rows)
        return ds.map(prepare, batched=True, remove_columns=ds.column_names, desc="prepare_train_features"), "datasets"
    except ImportError:
        feats = []
        for i in range(0, len(rows), 1000):
            chunk = rows[i : i + 1000]
            batch = {k: [r[k] for r in chunk] for k in chunk[0]}
            enc = prepare(batch)
            keys = list(enc)
            for j in range(len(enc["input_ids"])):
                feats.append({k: enc[k][j] for k in keys})
        return feats, "list"


def cmd_train(args) -> None:
    import torch
    import transformers
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    C.use_threads(args.threads)
    t_start = time.perf_counter()
    rows = json.loads(Path(args.rows).read_text())
    tokenizer = AutoTokenizer.from_pretrained(args.model, use_fast=True)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model)
    prepare = make_prepare_train_features(tokenizer, args.max_length, args.doc_stride)
    train_dataset, how = _train_dataset(rows, prepare)
    n_windows = len(train_dataset)

    steps = C.StepLog()  # each step from its forward's start to the end of its optimizer step

    class Timing(TrainerCallback):
        def on_step_end(self, args_, state, control, **kw):
            steps.end()

    class CountingTrainer(Trainer):
        def training_step(self, model, inputs, *a, **kw):
            steps.begin()
            steps.batch(inputs)
            loss = super().training_step(model, inputs, *a, **kw)
            steps.loss(float(loss.detach().float()))
            return loss

    cuda = torch.cuda.is_available() and not args.cpu
    full = args.epochs is not None
    steps_total = None if full else args.warmup_steps + args.steps
    if full:
        per_epoch = -(-n_windows // args.batch_size)
        steps_for_schedule = per_epoch * args.epochs
    else:
        steps_for_schedule = steps_total
    targs = dict(
        output_dir=args.out_dir,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=int(args.warmup_ratio * steps_for_schedule),
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        optim="adamw_torch",
        seed=args.seed,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        bf16=args.precision == "bf16",
        fp16=args.precision == "fp16",
    )
    if full:
        targs["num_train_epochs"] = args.epochs
        if args.max_steps:
            targs["max_steps"] = args.max_steps
    else:
        targs["max_steps"] = steps_total
    if not cuda:
        targs["use_cpu"] = True
    training_args = TrainingArguments(**targs)
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        data_collator=default_data_collator,
        processing_class=tokenizer,
        callbacks=[Timing()],
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t_train = time.perf_counter()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    t_end = time.perf_counter()
    result = {
        "side": "hf-trainer",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "precision": args.precision,
        "dataset_impl": how,
        "train_windows": n_windows,
        **steps.summary(0 if full else args.warmup_steps),
        "train_wall_s": t_end - t_train,
        "process_seconds": t_end - t_start,
        "peak_rss_mib": C.peak_rss_mib(),
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "examples": len(rows),
    }
    if args.save_weights:
        from safetensors.torch import save_file

        state = {k: v.detach().float().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
        save_file(state, args.save_weights, metadata={"format": "pt"})
    C.emit(result)


# --- eval: the question-answering pipeline ----------------------------------------------------


def _pipeline(model: str, threads: int | None, precision: str = "fp32"):
    """The pipeline as its documentation loads it; `precision` bf16 passes torch_dtype, which is
    how a user runs it in bf16, so that it can be compared with spokenqa's bf16 at equal precision."""
    import torch
    from transformers import pipeline

    C.use_threads(threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    return pipeline("question-answering", model=model, tokenizer=model, device=-1, torch_dtype=dtype)


def cmd_eval(args) -> None:
    import torch
    import transformers

    rows = json.loads(Path(args.rows).read_text())
    t0 = time.perf_counter()
    qa = _pipeline(args.model, args.threads, args.precision)
    load = time.perf_counter() - t0
    kwargs = {"batch_size": args.batch_size} if args.batch_size else {}
    questions = [r["question"] for r in rows]
    contexts = [r["context"] for r in rows]
    t0 = time.perf_counter()
    out = qa(question=questions, context=contexts, **kwargs)
    seconds = time.perf_counter() - t0
    if isinstance(out, dict):
        out = [out]
    preds = {r["id"]: o["answer"] for r, o in zip(rows, out)}
    Path(args.out).write_text(json.dumps(preds))
    C.emit({
        "side": "pipeline",
        "precision": args.precision,
        "batch_size": args.batch_size or "default (1)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_s": load,
        "seconds": seconds,
        "questions": len(rows),
        "questions_per_s": len(rows) / seconds,
        "peak_rss_mib": C.peak_rss_mib(),
    })


# --- latency and scaling ----------------------------------------------------------------------


def cmd_latency(args) -> None:
    import torch
    import transformers

    spec = json.loads(Path(args.spec).read_text())
    qa = _pipeline(args.model, args.threads, args.precision)
    q, ctx = spec["question"], spec["context"]
    single = C.time_calls(lambda: qa(question=q, context=ctx), spec["warmup"], spec["calls"])
    result = {"side": "pipeline", "precision": args.precision, "transformers": transformers.__version__,
              "threads": torch.get_num_threads(), "single": single, "questions": [], "context": []}
    for n in spec["n_questions"]:
        qs = spec["questions"][:n]
        qa(question=qs, context=[ctx] * len(qs))  # warm-up per point, as the spokenqa side gets
        median_s = C.median_call(lambda qs=qs: qa(question=qs, context=[ctx] * len(qs)), spec["repeats"])
        result["questions"].append({"n": n, "median_s": median_s, "runs": spec["repeats"]})
    for item in spec["contexts"]:
        qa(question=q, context=item["context"])  # warm-up per point
        median_s = C.median_call(lambda item=item: qa(question=q, context=item["context"]), spec["repeats"])
        result["context"].append({"windows": item["windows"], "words": item["words"], "median_s": median_s})
    result["peak_rss_mib"] = C.peak_rss_mib()
    C.emit(result)


def cmd_load(args) -> None:
    def imports() -> None:
        import torch  # noqa: F401
        from transformers import pipeline  # noqa: F401

    times, _ = C.load_times(imports, lambda _: _pipeline(args.model, args.threads, args.precision),
                            lambda qa: qa(question=C.FIRST_CALL[0], context=C.FIRST_CALL[1]))
    C.emit({"side": "pipeline", "precision": args.precision, **times})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--rows", required=True)
    t.add_argument("--model", required=True)
    t.add_argument("--out-dir", required=True)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first")
    t.add_argument("--steps", type=int, default=30, help="timed steps")
    t.add_argument("--epochs", type=float, default=None, help="full mode: train this many epochs, time all")
    t.add_argument("--max-steps", type=int, default=None, help="full mode: stop after this many steps")
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--max-length", type=int, default=384)
    t.add_argument("--doc-stride", type=int, default=128)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--precision", choices=("no", "bf16", "fp16"), default="no")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--cpu", action="store_true")
    t.add_argument("--save-weights", default=None)
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval")
    e.add_argument("--rows", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--batch-size", type=int, default=0, help="0: the pipeline's default")
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="weights' dtype (pipeline default fp32)")
    e.set_defaults(func=cmd_eval)
    lat = sub.add_parser("latency")
    lat.add_argument("--model", required=True)
    lat.add_argument("--spec", required=True)
    lat.add_argument("--threads", type=int, default=None)
    lat.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="weights' dtype (pipeline default fp32)")
    lat.set_defaults(func=cmd_latency)
    ld = sub.add_parser("load")
    ld.add_argument("--model", required=True)
    ld.add_argument("--threads", type=int, default=None)
    ld.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="weights' dtype (pipeline default fp32)")
    ld.set_defaults(func=cmd_load)
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    args.func(args)


if __name__ == "__main__":
    main()
