"""Benchmark: `kcbert-tf finetune` against transformers' own PyTorch fine-tuning on KLUE-NER and KorQuAD.

Two rows, each the same comparison as `benchmarks.finetune_parity` (the sentence tasks) makes:

- **start**: one Hugging Face checkpoint, a `BertForMaskedLM` of a small config (the real 30,000-
  token KcBERT vocab, erf GELU; `parity_common.small_config`, with 128 positions so that the QA
  windows fit) with random weights from torch (fixed seed), written by `save_pretrained`
  (safetensors) beside `vocab.txt` and a `tokenizer_config.json` (cased).  Neither head uses a
  pooler (transformers' `BertForTokenClassification` / `BertForQuestionAnswering` have none; ours
  freezes it), so none is added.  Both sides take its embeddings and encoder; only the head is
  freshly drawn on each side.
- **ours**: `kcbert-tf finetune --task klue-ner | korquad --init HF_DIR ...` through
  `kcbert_tf.cli.main` in a fresh process (the import of the Hugging Face directory, with its
  verification, counts in the whole command).
- **transformers**: `AutoTokenizer.from_pretrained(HF_DIR)` (the fast tokenizer),
  `BertForTokenClassification` / `BertForQuestionAnswering.from_pretrained(HF_DIR)`, a plain
  PyTorch loop (`torch.optim.AdamW` eps 1e-8, weight decay 0, `get_linear_schedule_with_warmup(opt,
  0, total)`, `clip_grad_norm_(..., 1.0)`, a `DataLoader` shuffled by a seeded generator, every
  example once per epoch as ours, dropout as in the config), in a fresh process.
- **data and settings**, the same for both sides:
  - NER: sentences of ``$KCBERT_TF_DATA/klue-ner/train.tsv`` (KLUE-NER dev), cut into a training
    and an evaluation slice by sentence (by default sentences 1-1,500 and 3,001-3,400, as
    `tests/test_ner.py`), written to temporary files in KLUE's format (its license allows it) and
    read by both sides with `kcbert_tf.tasks.ner.files.read_ner_file`; max length 50.  The
    transformers side tokenizes with the fast tokenizer (`truncation`, `padding="max_length"`,
    `return_offsets_mapping`) and labels its tokens with OUR alignment rule,
    `kcbert_tf.tasks.ner.token_labels.token_targets` on ITS offsets (-100 ignored: the model's
    CrossEntropy ignore_index); its predictions go back to the characters with
    `token_labels.unit_tags`.
  - QA: ``$KCBERT_TF_DATA/korquad/KorQuAD_v1.0_dev.json``, split IN MEMORY by article
    (`kcbert_tf.tasks.qa.squad_files.split_by_article`, share 0.1, the training seed; ours through
    `--eval-split 0.1`, which does the same), the first N answerable training questions
    (`--limit-train N`), max length 128, stride 64, question <= 32 tokens, answer <= 30.  The
    transformers side builds its windows with `kcbert_tf.tasks.qa.features.build_features` on the
    fast tokenizer's ids and offsets and decodes with `kcbert_tf.tasks.qa.decoding.decode_answers`.
  - lr 1e-3 on both sides, as the repository's tests of a tiny random model use (the presets'
    8e-5 / 5e-5 are for the pretrained KcBERT), batch 32 (NER) / 16 (QA), seed 42; 4 NER epochs,
    2 QA epochs.
- **scores**: the same code on both sides: NER entity precision / recall / F1 (seqeval,
  `kcbert_tf.tasks.ner.metric.entity_scores`); QA KorQuAD 1.0 EM / F1
  (`kcbert_tf.tasks.qa.korquad_metric.korquad_scores`); after every epoch, the table gives the best
  epoch by F1 (the first of equals, as ours keeps it).
- **checks** that both sides saw the same thing: fingerprints (SHA-256) of the model inputs (ids,
  masks, segments), the NER token targets, the QA answer positions and offsets, and the QA
  training and evaluation question ids, recorded inside our `finetune` process and compared with
  the transformers side's.
- **times**: "fit" is the training alone (ours: `model.fit` inside `finetune` minus the per-epoch
  evaluation it runs, both measured by wrapping them in the worker process; transformers: the loop
  without its evaluation); "whole" is the command from process start to exit (the transformers
  side's less the one evaluation before training it runs for this benchmark: the reference score
  of the start with a fresh head, "what learning nothing scores").

Goals: NER entity F1 within 1 point of transformers'; QA EM and F1 each within 1 point; and faster.

    .venv/bin/python -m benchmarks.parity_ner_qa [--only ner|qa] [--ner-epochs 4] [--qa-epochs 2]
        [--ner-train 1500] [--ner-eval 400] [--qa-limit-train 600] [--layers 2] [--hidden 128] [--keep DIR]

From another benchmark: ``ner_rows(...)`` and ``qa_rows(...)`` return the rows (dicts) and
``format_rows(rows)`` the table and the goal lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks import parity_common as parity  # noqa: E402
from benchmarks.parity_common import ADAM_EPSILON, CLIP_NORM, GOAL_POINTS, TRAIN_SEED, run_process, tail  # noqa: E402
from benchmarks.nsmc_split import SHARED, VOCAB, shared_data_absent  # noqa: E402

__all__ = ["NerSettings", "QaSettings", "write_hf_start", "ner_rows", "qa_rows", "format_rows", "main"]

KLUE_NER = SHARED / "klue-ner" / "train.tsv"
KORQUAD = SHARED / "korquad" / "KorQuAD_v1.0_dev.json"
REPO = pathlib.Path(__file__).resolve().parents[1]
OURS, THEIRS = "kcbert-tf finetune", "transformers (PyTorch loop)"


@dataclasses.dataclass(frozen=True)
class NerSettings:
    """The NER row: which KLUE-NER sentences (0-based, end exclusive) and how to train on them."""

    train: tuple[int, int] = (0, 1500)
    evaluation: tuple[int, int] = (3000, 3400)
    max_length: int = 50
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = TRAIN_SEED
    padding: str = "max_length"  # the transformers side's batches: "max_length", or "longest" (each cut to its longest row)


@dataclasses.dataclass(frozen=True)
class QaSettings:
    """The QA row: the in-memory split of KorQuAD dev and how to train on it."""

    eval_split: float = 0.1
    limit_train: int = 600
    max_length: int = 128
    doc_stride: int = 64
    max_query_length: int = 32
    max_answer_length: int = 30
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 1e-3
    seed: int = TRAIN_SEED  # the training seed, and the split's (ours splits with --seed)
    padding: str = "max_length"  # the transformers side's batches: "max_length", or "longest"


# --- the common start ---------------------------------------------------------------------------


def write_hf_start(directory: pathlib.Path, layers: int = 2, hidden: int = 128, seed: int = 0, positions: int = 128) -> dict:
    """The common start: a seeded random ``BertForMaskedLM`` (``parity_common.small_config`` with
    ``positions`` positions) saved by ``save_pretrained``, the real vocab and a tokenizer config."""
    import torch
    import transformers
    from transformers import BertConfig, BertForMaskedLM

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = VOCAB.read_text(encoding="utf-8").splitlines()
    config = {**parity.small_config(layers, hidden, len(vocab)), "max_position_embeddings": positions}
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(**config))
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(directory, safe_serialization=True)
    shutil.copyfile(VOCAB, directory / "vocab.txt")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}), encoding="utf-8"
    )
    return config


# --- the data -----------------------------------------------------------------------------------


def klue_blocks(path: pathlib.Path = KLUE_NER) -> tuple[list[str], list[list[str]]]:
    """KLUE-NER's header comment lines, and its sentences as line blocks (the ``## klue-ner-…``
    line, then its character lines, as read: a space character's line starts with a space)."""
    header: list[str] = []
    blocks: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("## klue-ner"):
            blocks.append([line])
        elif not blocks:
            if line:
                header.append(line)
        elif line:
            blocks[-1].append(line)
    return header, blocks


def write_klue_slices(directory: pathlib.Path, settings: NerSettings) -> tuple[pathlib.Path, pathlib.Path]:
    """``train.tsv`` and ``eval.tsv``: the header and the sentence slices, in KLUE's format."""
    header, blocks = klue_blocks()
    paths = []
    for name, (start, stop) in (("train.tsv", settings.train), ("eval.tsv", settings.evaluation)):
        if not 0 <= start < stop <= len(blocks):
            raise ValueError(f"sentences {start}-{stop} of {len(blocks)} in {KLUE_NER}")
        path = directory / name
        path.write_text("\n".join(header) + "\n" + "".join("\n".join(b) + "\n\n" for b in blocks[start:stop]), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def qa_split(settings: QaSettings):
    """The QA examples both sides train and evaluate on, split in memory as ``QaTask`` does with
    ``--eval-split``: ``(training questions, evaluation questions)``."""
    from kcbert_tf.tasks.qa.squad_files import read_squad, split_by_article

    everything = read_squad(KORQUAD, training=False)
    train_side, eval_side = split_by_article(everything.examples, settings.eval_split, settings.seed)
    aligned = [example for example in train_side if example.aligned and example.answer_texts]
    return aligned[: settings.limit_train], eval_side


# --- fingerprints: both sides saw the same inputs -----------------------------------------------


def fingerprint(*parts) -> str:
    """A short SHA-256 of arrays (values and shapes, as int64) and of JSON-able things."""
    import numpy as np

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(repr(part.shape).encode())
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
        else:
            digest.update(json.dumps(part, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def qa_fingerprints(features, training: bool) -> dict:
    common = [features.token_ids, features.segment_ids, features.padding_mask, features.example_index]
    if training:
        return {"windows": len(features), "inputs": fingerprint(*common),
                "answer_positions": fingerprint(features.start_positions, features.end_positions)}
    return {"windows": len(features), "inputs": fingerprint(*common), "offsets": fingerprint(features.offsets)}


# --- the two sides, each in its own process -----------------------------------------------------


def worker_ours(finetune_argv: list[str], result_path: str) -> int:
    """``kcbert-tf finetune`` through the CLI entry; times ``model.fit`` and the per-epoch
    evaluation inside it, and records what the model was fed (fingerprints, question ids)."""
    import tensorflow as tf

    from kcbert_tf.cli import main as cli
    from kcbert_tf.model.question_answerer import KcBertQuestionAnswerer
    from kcbert_tf.model.token_classifier import KcBertTokenClassifier
    from kcbert_tf.tasks import finetuning
    from kcbert_tf.tasks.ner import task as ner_task
    from kcbert_tf.tasks.qa import task as qa_task
    from kcbert_tf.tasks.ner.task import NerTask
    from kcbert_tf.tasks.qa.task import QaTask

    record = {"fit": 0.0, "eval_in_fit": 0.0, "eval_calls": 0, "seen": {}}
    inside_fit = [False]

    def timed_fit(original):
        def fit(self, *args, **kwargs):
            inside_fit[0], start = True, time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                inside_fit[0] = False
                record["fit"] += time.perf_counter() - start
        return fit

    def timed_evaluate(original):
        def evaluate(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                if inside_fit[0]:
                    record["eval_in_fit"] += time.perf_counter() - start
                    record["eval_calls"] += 1
        return evaluate

    for cls in (KcBertTokenClassifier, KcBertQuestionAnswerer):
        cls.fit = timed_fit(cls.fit)
    for cls in (NerTask, QaTask):
        cls.evaluate = timed_evaluate(cls.evaluate)

    original_ner_features = ner_task.ner_features

    def recording_ner_features(tokenizer, sentences, max_seq_length, label_ids=None):
        features = original_ner_features(tokenizer, sentences, max_seq_length, label_ids)
        inputs = features["inputs"]
        seen = {"sentences": len(sentences), "inputs": fingerprint(inputs["token_ids"], inputs["padding_mask"], inputs["segment_ids"]),
                "spans": fingerprint([[list(span) for span in spans] for spans in features["spans"]])}
        if label_ids is not None:
            seen["labels"] = list(label_ids)
            seen["targets"] = fingerprint(features["targets"])
        record["seen"]["train" if label_ids is not None else "eval"] = seen
        return features

    ner_task.ner_features = recording_ner_features
    original_features = qa_task.features_with_tokenizer

    def recording_features(examples, tokenizer, *, training, **settings):
        features = original_features(examples, tokenizer, training=training, **settings)
        record["seen"]["train" if training else "eval"] = {
            "questions": len(examples), "question_ids": fingerprint([example.id for example in examples]),
            **qa_fingerprints(features, training)}
        return features

    qa_task.features_with_tokenizer = recording_features  # the QA task's windows are cut with it
    original_read = finetuning.convert_hf

    def timed_read(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original_read(*args, **kwargs)
        finally:
            record["init_import"] = time.perf_counter() - start

    finetuning.convert_hf = timed_read  # the start model, converted on the fly
    rc = cli(["finetune", *finetune_argv])
    record["rc"] = rc
    record["threads"] = (
        f"TensorFlow intra-op {tf.config.threading.get_intra_op_parallelism_threads()}, inter-op "
        f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF's default: all {os.cpu_count()} cores)"
    )
    pathlib.Path(result_path).write_text(json.dumps(record), encoding="utf-8")
    return rc


def _torch_loop(model, loader, epochs: int, learning_rate: float, evaluate, log_name: str) -> dict:
    """The plain PyTorch fine-tuning loop both transformers workers share; ``loader`` yields dicts
    of model arguments (labels included), ``evaluate()`` the scores after each epoch."""
    import numpy as np
    import torch
    from transformers import get_linear_schedule_with_warmup

    total = len(loader) * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, eps=ADAM_EPSILON, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, total)
    start = time.perf_counter()
    model.eval()
    with torch.no_grad():
        untrained = evaluate()  # the start with its fresh head: what learning nothing scores
    untrained_seconds = time.perf_counter() - start
    epochs_out, fit_seconds, eval_seconds = [], 0.0, 0.0
    model.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        losses = parity.torch_train_epoch(model, loader, optimizer, schedule)
        fit_seconds += time.perf_counter() - start
        start = time.perf_counter()
        model.eval()
        with torch.no_grad():
            scores = evaluate()
        model.train()
        eval_seconds += time.perf_counter() - start
        epochs_out.append({"epoch": epoch, "train_loss": float(np.mean(losses)), **scores})
        print(f"{log_name} epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in epochs_out[-1].items()
                                                        if isinstance(v, float)), file=sys.stderr, flush=True)
    best = max(epochs_out, key=lambda row: row["f1"])  # the first of equals, as ours
    return {"epochs": epochs_out, "best": best, "fit": fit_seconds, "eval": eval_seconds, "steps": total, "untrained": untrained,
            "untrained_eval": untrained_seconds,
            "threads": f"torch intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()} (torch's defaults)"}


def _loader(tensors: dict, batch_size: int, seed: int, padding: str = "max_length"):
    """A seeded shuffled ``DataLoader`` of dicts, every example once per epoch (the last batch
    partial, as ours uses every example); ``padding="longest"`` cuts each batch to its longest row
    (what ``DataCollatorWithPadding`` gives)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    names = list(tensors)
    width = tensors["attention_mask"].shape[1]
    dataset = TensorDataset(*(tensors[name] for name in names))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))

    class Named:
        def __len__(self):
            return len(loader)

        def __iter__(self):
            for batch in loader:
                named = dict(zip(names, batch))
                if padding == "longest":
                    longest = int(named["attention_mask"].sum(1).max())
                    named = {name: value[:, :longest].contiguous() if value.dim() == 2 and value.shape[1] == width else value
                             for name, value in named.items()}
                yield named

    return Named()


def worker_transformers_ner(spec: dict, result_path: str) -> int:
    """transformers' NER fine-tuning: ``BertForTokenClassification``, labels by our rule on the
    fast tokenizer's offsets, scored by our seqeval code."""
    import numpy as np
    import torch
    import transformers
    from transformers import AutoTokenizer, BertForTokenClassification

    from kcbert_tf.tasks.ner.files import label_set, read_ner_file
    from kcbert_tf.tasks.ner.token_labels import IGNORED, token_targets, unit_tags
    from kcbert_tf.tasks.ner.metric import entity_scores

    transformers.logging.set_verbosity_error()
    settings = NerSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["settings"].items()})
    tokenizer = AutoTokenizer.from_pretrained(spec["hf_dir"])
    train = read_ner_file(spec["train"], "klue-ner")
    evaluation = read_ner_file(spec["eval"], "klue-ner")
    labels = label_set(train)
    label_ids = {name: index for index, name in enumerate(labels)}
    seen = {}

    def encode(sentences, name: str, with_targets: bool):
        batch = tokenizer([s.text for s in sentences], truncation=True, max_length=settings.max_length,
                          padding="max_length", return_offsets_mapping=True)
        ids = np.asarray(batch["input_ids"], np.int32)
        mask = np.asarray(batch["attention_mask"], np.int32)
        types = np.asarray(batch["token_type_ids"], np.int32)
        targets = np.full(ids.shape, IGNORED, np.int32)
        positions, spans = [], []
        for row, sentence in enumerate(sentences):
            kept = [i for i, sequence in enumerate(batch.sequence_ids(row)) if sequence == 0]  # the text's tokens
            offsets = [tuple(batch["offset_mapping"][row][i]) for i in kept]
            positions.append(kept)
            spans.append(offsets)
            if with_targets:
                targets[row, kept] = token_targets(sentence.units, sentence.tags, offsets, label_ids)
        seen[name] = {"sentences": len(sentences), "inputs": fingerprint(ids, mask, types),
                      "spans": fingerprint([[list(span) for span in offsets] for offsets in spans])}
        if with_targets:
            seen[name].update(labels=labels, targets=fingerprint(targets))
        return ids, mask, types, targets, positions, spans

    ids, mask, types, targets, _, _ = encode(train, "train", True)
    eval_ids, eval_mask, eval_types, _, eval_positions, eval_spans = encode(evaluation, "eval", False)
    torch.manual_seed(settings.seed)
    model = BertForTokenClassification.from_pretrained(
        spec["hf_dir"], num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_ids)
    loader = _loader({"input_ids": torch.from_numpy(ids).long(), "attention_mask": torch.from_numpy(mask).long(),
                      "token_type_ids": torch.from_numpy(types).long(), "labels": torch.from_numpy(targets).long()},
                     settings.batch_size, settings.seed, settings.padding)
    gold = [list(sentence.tags) for sentence in evaluation]

    def evaluate() -> dict:
        logits = []
        for start in range(0, len(eval_ids), settings.batch_size):
            window = slice(start, start + settings.batch_size)
            logits.append(model(input_ids=torch.from_numpy(eval_ids[window]).long(),
                                attention_mask=torch.from_numpy(eval_mask[window]).long(),
                                token_type_ids=torch.from_numpy(eval_types[window]).long()).logits.numpy())
        best = np.concatenate(logits).argmax(-1)
        predicted = [unit_tags(sentence.units, offsets, [labels[i] for i in best[row, kept]])
                     for row, (sentence, offsets, kept) in enumerate(zip(evaluation, eval_spans, eval_positions))]
        return entity_scores(gold, predicted)

    result = _torch_loop(model, loader, settings.epochs, settings.learning_rate, evaluate, "transformers ner")
    result.update(train_examples=len(train), eval_examples=len(evaluation), seen=seen,
                  labelled_tokens=int((targets != IGNORED).sum()), tokenizer=_describe(tokenizer))
    pathlib.Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


def worker_transformers_qa(spec: dict, result_path: str) -> int:
    """transformers' QA fine-tuning: ``BertForQuestionAnswering`` on our windows of the fast
    tokenizer's ids and offsets, decoded and scored by our code."""
    import numpy as np
    import torch
    import transformers
    from transformers import AutoTokenizer, BertForQuestionAnswering

    from kcbert_tf.tasks.qa.korquad_metric import korquad_scores
    from kcbert_tf.tasks.qa.decoding import decode_answers
    from kcbert_tf.tasks.qa.features import build_features

    transformers.logging.set_verbosity_error()
    settings = QaSettings(**spec["settings"])
    tokenizer = AutoTokenizer.from_pretrained(spec["hf_dir"])

    def encode(texts):
        out = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [(ids, [tuple(span) for span in spans]) for ids, spans in zip(out["input_ids"], out["offset_mapping"])]

    train_examples, eval_examples = qa_split(settings)
    windows = {"max_length": settings.max_length, "doc_stride": settings.doc_stride, "max_query_length": settings.max_query_length}
    special = {"cls_id": tokenizer.cls_token_id, "sep_id": tokenizer.sep_token_id, "pad_id": tokenizer.pad_token_id}
    train = build_features(train_examples, encode, training=True, **special, **windows)
    evaluation = build_features(eval_examples, encode, training=False, **special, **windows)
    seen = {
        "train": {"questions": len(train_examples), "question_ids": fingerprint([e.id for e in train_examples]),
                  **qa_fingerprints(train, True)},
        "eval": {"questions": len(eval_examples), "question_ids": fingerprint([e.id for e in eval_examples]),
                 **qa_fingerprints(evaluation, False)},
    }
    torch.manual_seed(settings.seed)
    model = BertForQuestionAnswering.from_pretrained(spec["hf_dir"])
    as_long = lambda array: torch.from_numpy(np.asarray(array)).long()  # noqa: E731
    loader = _loader({"input_ids": as_long(train.token_ids), "attention_mask": as_long(train.padding_mask),
                      "token_type_ids": as_long(train.segment_ids), "start_positions": as_long(train.start_positions),
                      "end_positions": as_long(train.end_positions)}, settings.batch_size, settings.seed,
                     settings.padding)

    def evaluate() -> dict:
        starts, ends = [], []
        for start in range(0, len(evaluation), settings.batch_size):
            window = slice(start, start + settings.batch_size)
            out = model(input_ids=as_long(evaluation.token_ids[window]), attention_mask=as_long(evaluation.padding_mask[window]),
                        token_type_ids=as_long(evaluation.segment_ids[window]))
            starts.append(out.start_logits.numpy())
            ends.append(out.end_logits.numpy())
        answers = decode_answers(eval_examples, evaluation, np.concatenate(starts), np.concatenate(ends),
                                 max_answer_length=settings.max_answer_length)
        scores = korquad_scores(eval_examples, answers)
        return {"exact_match": float(scores["exact_match"]), "f1": float(scores["f1"])}

    result = _torch_loop(model, loader, settings.epochs, settings.learning_rate, evaluate, "transformers qa")
    result.update(train_examples=len(train_examples), eval_examples=len(eval_examples), seen=seen,
                  train_windows=len(train), eval_windows=len(evaluation), tokenizer=_describe(tokenizer))
    pathlib.Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


# --- the driver ---------------------------------------------------------------------------------


def _describe(tokenizer) -> str:
    return f"{type(tokenizer).__name__}, is_fast={tokenizer.is_fast}"


def _worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.parity_ner_qa", *args]


def _environment() -> None:
    """The workers run ``-m benchmarks.parity_ner_qa``: the repository root on their path."""
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(REPO) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, paths)])


def _run_ours(work: pathlib.Path, name: str, argv: list[str]) -> dict:
    output, record_path, log = work / f"ours-{name}", work / f"ours-{name}-record.json", work / f"ours-{name}.log"
    command = _worker_command("--worker", "ours", "--result", str(record_path), "--", *argv, "--output", str(output), "--overwrite")
    rc, whole = run_process(command, log)
    if rc or not (output / "metrics.json").exists():
        return {"failed": f"kcbert-tf finetune exited {rc}:\n{tail(log)}"}
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    record = json.loads(record_path.read_text(encoding="utf-8"))
    result = {"epochs": metrics["epochs"], "best": metrics["best"], "fit": record["fit"] - record["eval_in_fit"],
              "fit_with_eval": record["fit"], "whole": whole, "init_import": record.get("init_import"),
              "threads": record["threads"], "seen": record["seen"],
              "train_examples": metrics["train_examples"], "eval_examples": metrics["eval_examples"], "metrics": metrics,
              "steps": -(-metrics.get("train_windows", metrics["train_examples"]) // metrics["settings"]["batch_size"])
              * metrics["settings"]["epochs"]}  # every example once per epoch
    predictions = output / "predictions.json"
    if predictions.exists():
        result["prediction_ids"] = sorted(json.loads(predictions.read_text(encoding="utf-8")))
    return result


def _run_theirs(work: pathlib.Path, name: str, spec: dict) -> dict:
    spec_path, result_path = work / f"transformers-{name}-spec.json", work / f"transformers-{name}-result.json"
    log = work / f"transformers-{name}.log"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = _worker_command("--worker", f"transformers-{name}", "--result", str(result_path), "--spec", str(spec_path))
    rc, whole = run_process(command, log)
    if rc:
        return {"failed": f"the transformers {name} worker exited {rc}:\n{tail(log)}"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    # the evaluation before training is this benchmark's extra (ours has none): not in the whole command
    return {**result, "whole": whole - result["untrained_eval"], "whole_measured": whole}


def _same_inputs(ours: dict, theirs: dict) -> list[str]:
    """The fingerprints that differ between the two sides (empty: they saw the same inputs)."""
    differ = []
    for split in ("train", "eval"):
        mine, yours = ours["seen"].get(split, {}), theirs["seen"].get(split, {})
        for key in sorted(set(mine) | set(yours)):
            if mine.get(key) != yours.get(key):
                differ.append(f"{split} {key}: ours {mine.get(key)!r}, transformers {yours.get(key)!r}")
    return differ


def _rows(task: str, metric_names: tuple[str, ...], results: dict, notes: list[str]) -> list[dict]:
    rows = []
    for side, result in results.items():
        row = {"task": task, "side": side, "metric_names": metric_names, "notes": notes}
        if "failed" in result:
            row["failed"] = result["failed"]
        else:
            best = result["best"]
            row.update(best_epoch=best["epoch"], scores={name: best[name] for name in metric_names},
                       final={name: result["epochs"][-1][name] for name in metric_names},
                       per_epoch=[{"epoch": e["epoch"], "train_loss": e["train_loss"], **{n: e[n] for n in metric_names}}
                                  for e in result["epochs"]],
                       fit_s=result["fit"], whole_s=result["whole"], threads=result["threads"],
                       train_examples=result["train_examples"], eval_examples=result["eval_examples"])
            if "fit_with_eval" in result:
                row["fit_with_eval_s"] = result["fit_with_eval"]
                row["outside_s"] = result["whole"] - result["fit_with_eval"]
                row["init_import_s"] = result.get("init_import")
            else:
                row["outside_s"] = result["whole"] - result["fit"] - result["eval"]
            if "untrained" in result:
                row["untrained"] = {name: result["untrained"][name] for name in metric_names}
                row["untrained_eval_s"] = result["untrained_eval"]
            if "steps" in result:
                row["steps"] = result["steps"]
            if "per_type" in best:
                row["per_type_f1"] = {kind: value["f1"] for kind, value in best["per_type"].items()}
        rows.append(row)
    return rows


def ner_rows(work: str | os.PathLike | None = None, hf_dir: str | os.PathLike | None = None,
             settings: NerSettings = NerSettings(), *, layers: int = 2, hidden: int = 128, start_seed: int = 0) -> list[dict]:
    """The NER row (two dicts: ours, transformers): KLUE-NER slices, both sides from ``hf_dir``
    (written here, 128 positions, when not given), in ``work`` (a temporary directory when not given)."""
    _environment()
    scratch = None if work else tempfile.mkdtemp(prefix="parity-ner-")
    work = pathlib.Path(work or scratch)
    try:
        work.mkdir(parents=True, exist_ok=True)
        if hf_dir is None:
            hf_dir = work / "hf-start"
            write_hf_start(hf_dir, layers, hidden, start_seed, max(128, settings.max_length))
        data = work / "klue-ner"
        data.mkdir(exist_ok=True)
        train, evaluation = write_klue_slices(data, settings)
        argv = ["--task", "klue-ner", "--train", str(train), "--eval", str(evaluation), "--init", str(hf_dir),
                "--epochs", str(settings.epochs), "--max-seq-length", str(settings.max_length),
                "--batch-size", str(settings.batch_size), "--learning-rate", str(settings.learning_rate),
                "--seed", str(settings.seed)]
        spec = {"hf_dir": str(hf_dir), "train": str(train), "eval": str(evaluation), "settings": dataclasses.asdict(settings)}
        print("NER: running transformers ...", file=sys.stderr, flush=True)
        theirs = _run_theirs(work, "ner", spec)
        print("NER: running kcbert-tf finetune ...", file=sys.stderr, flush=True)
        ours = _run_ours(work, "ner", argv)
        notes = [f"KLUE-NER sentences {settings.train[0] + 1}-{settings.train[1]} train / {settings.evaluation[0] + 1}-"
                 f"{settings.evaluation[1]} eval; max length {settings.max_length}, {settings.epochs} epochs, batch "
                 f"{settings.batch_size}, lr {settings.learning_rate:g}, seed {settings.seed}"]
        if "failed" not in ours and "failed" not in theirs:
            differ = _same_inputs(ours, theirs)
            notes.append("inputs: " + ("the same ids, masks, token spans and token targets on both sides "
                                       f"({theirs['labelled_tokens']:,} labelled training tokens, transformers' {theirs['tokenizer']})"
                                       if not differ else "DIFFERENT: " + "; ".join(differ)))
        return _rows("KLUE-NER", ("f1", "precision", "recall"), {OURS: ours, THEIRS: theirs}, notes)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def qa_rows(work: str | os.PathLike | None = None, hf_dir: str | os.PathLike | None = None,
            settings: QaSettings = QaSettings(), *, layers: int = 2, hidden: int = 128, start_seed: int = 0) -> list[dict]:
    """The KorQuAD row (two dicts: ours, transformers): KorQuAD dev split in memory by article, both
    sides from ``hf_dir`` (written here when not given), in ``work`` (temporary when not given)."""
    _environment()
    scratch = None if work else tempfile.mkdtemp(prefix="parity-qa-")
    work = pathlib.Path(work or scratch)
    try:
        work.mkdir(parents=True, exist_ok=True)
        if hf_dir is None:
            hf_dir = work / "hf-start"
            write_hf_start(hf_dir, layers, hidden, start_seed, max(128, settings.max_length))
        argv = ["--task", "korquad", "--train", str(KORQUAD), "--eval-split", str(settings.eval_split),
                "--limit-train", str(settings.limit_train), "--init", str(hf_dir), "--epochs", str(settings.epochs),
                "--max-seq-length", str(settings.max_length), "--doc-stride", str(settings.doc_stride),
                "--max-query-length", str(settings.max_query_length), "--max-answer-length", str(settings.max_answer_length),
                "--batch-size", str(settings.batch_size), "--learning-rate", str(settings.learning_rate),
                "--seed", str(settings.seed)]
        spec = {"hf_dir": str(hf_dir), "settings": dataclasses.asdict(settings)}
        print("QA: running transformers ...", file=sys.stderr, flush=True)
        theirs = _run_theirs(work, "qa", spec)
        print("QA: running kcbert-tf finetune ...", file=sys.stderr, flush=True)
        ours = _run_ours(work, "qa", argv)
        notes = [f"KorQuAD 1.0 dev split in memory by article (eval share {settings.eval_split:g}, seed {settings.seed}), "
                 f"the first {settings.limit_train} answerable training questions; max length {settings.max_length}, "
                 f"stride {settings.doc_stride}, question <= {settings.max_query_length}, answer <= {settings.max_answer_length} "
                 f"tokens, {settings.epochs} epochs, batch {settings.batch_size}, lr {settings.learning_rate:g}"]
        if "failed" not in ours and "failed" not in theirs:
            differ = _same_inputs(ours, theirs)
            _, eval_examples = qa_split(settings)
            if ours.get("prediction_ids") != sorted(example.id for example in eval_examples):
                differ.append("ours' predictions.json answers other questions than the transformers side's eval split")
            notes.append("questions and windows: " + (
                f"the same on both sides: {theirs['train_examples']} train questions in {theirs['train_windows']:,} windows, "
                f"{theirs['eval_examples']} eval questions in {theirs['eval_windows']:,} windows (same question ids, ids, "
                f"segments, masks, answer positions, offsets; transformers' {theirs['tokenizer']})"
                if not differ else "DIFFERENT: " + "; ".join(differ)))
        return _rows("KorQuAD", ("exact_match", "f1"), {OURS: ours, THEIRS: theirs}, notes)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


_SHORT = {"f1": "F1", "precision": "P", "recall": "R", "exact_match": "EM"}


def _score_text(row: dict, key: str = "scores") -> str:
    scale = 100.0 if row["task"] == "KLUE-NER" else 1.0  # entity scores are fractions, KorQuAD's percentages
    return " / ".join(f"{_SHORT[name]} {scale * row[key][name]:.2f}" for name in row["metric_names"])


def format_rows(rows: list[dict]) -> str:
    """The table of ``ner_rows`` / ``qa_rows`` rows, then per task the differences, the speed
    ratios and whether the goals are met."""
    lines = ["| task | side | best epoch (points) | epoch | final epoch | fit s | whole command s | steps/s |",
             "| --- | --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for row in rows:
        if "failed" in row:
            lines.append(f"| {row['task']} | {row['side']} | FAILED | | | | | |")
            continue
        lines.append(f"| {row['task']} | {row['side']} | {_score_text(row)} | {row['best_epoch']} | "
                     f"{_score_text(row, 'final')} | {row['fit_s']:.1f} | {row['whole_s']:.1f} | {row['steps'] / row['fit_s']:.2f} |")
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    for task in tasks:
        pair = {row["side"]: row for row in rows if row["task"] == task}
        lines.append("")
        lines.append(f"{task}: " + "; ".join(pair[OURS]["notes"]))
        for row in pair.values():
            if "failed" in row:
                lines.append(f"  {row['side']} FAILED:\n{row['failed']}")
                continue
            lines.append(f"  {row['side']}: {row['train_examples']:,} train / {row['eval_examples']:,} eval; {row['threads']}; "
                         "per epoch: "
                         + ", ".join(f"{e['epoch']}: loss {e['train_loss']:.4f} F1 {(100 if task == 'KLUE-NER' else 1) * e['f1']:.2f}"
                                     for e in row["per_epoch"]))
            if "per_type_f1" in row:
                lines.append("    per type F1 (best epoch): "
                             + ", ".join(f"{k} {100 * v:.1f}" for k, v in sorted(row["per_type_f1"].items())))
            if "fit_with_eval_s" in row:
                lines.append(f"    ours' fit with its per-epoch evaluation: {row['fit_with_eval_s']:.1f} s")
            lines.append(f"    outside the training and its evaluation: {row['outside_s']:.1f} s (process start, imports, reading, "
                         "tokenizing, loading the start, writing the output"
                         + (f"; of it, converting the Hugging Face --init "
                         f"directory: {row['init_import_s']:.1f} s" if row.get("init_import_s") is not None else "") + ")")
            if "untrained" in row:
                lines.append(f"    before training (the start, the fresh head): {_score_text(row, 'untrained')}: "
                             "what learning nothing scores "
                             f"(this extra evaluation's {row['untrained_eval_s']:.1f} s are left out of its whole command)")
        ours, theirs = pair.get(OURS, {}), pair.get(THEIRS, {})
        if "failed" in ours or "failed" in theirs or not ours or not theirs:
            lines.append("  goal: not measured (a side failed)")
            continue
        scale = 100.0 if task == "KLUE-NER" else 1.0
        points = {name: scale * (ours["scores"][name] - theirs["scores"][name]) for name in ours["metric_names"]}
        judged = ("f1",) if task == "KLUE-NER" else ("exact_match", "f1")
        fit_ratio, whole_ratio = theirs["fit_s"] / ours["fit_s"], theirs["whole_s"] / ours["whole_s"]
        lines.append("  difference ours - transformers (best epochs, points): "
                     + ", ".join(f"{_SHORT[name]} {value:+.2f}" for name, value in points.items()))
        lines.append(f"  speed ours/transformers: fit {fit_ratio:.2f}x, whole command {whole_ratio:.2f}x")
        close = all(abs(points[name]) <= GOAL_POINTS for name in judged)
        met = close and fit_ratio > 1 and whole_ratio > 1
        lines.append(f"  goal ({' and '.join(_SHORT[n] for n in judged)} within {GOAL_POINTS:g} point, and faster): "
                     f"{'met' if met else 'NOT met'} (scores {'ok' if close else 'off'}, "
                     f"fit {'faster' if fit_ratio > 1 else 'slower'}, "
                     f"whole command {'faster' if whole_ratio > 1 else 'slower'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["ner", "qa"], help="run one row only")
    parser.add_argument("--ner-epochs", type=int, default=NerSettings.epochs)
    parser.add_argument("--ner-train", type=int, default=1500, help="KLUE-NER training sentences (the first N)")
    parser.add_argument("--ner-eval", type=int, default=400, help="KLUE-NER eval sentences (from sentence 3,001 on)")
    parser.add_argument("--ner-lr", type=float, default=NerSettings.learning_rate)
    parser.add_argument("--qa-epochs", type=int, default=QaSettings.epochs)
    parser.add_argument("--qa-limit-train", type=int, default=QaSettings.limit_train)
    parser.add_argument("--qa-eval-split", type=float, default=QaSettings.eval_split)
    parser.add_argument("--qa-lr", type=float, default=QaSettings.learning_rate)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="the random start")
    parser.add_argument("--keep", help="keep the start, the slices, the outputs and the logs in this directory")
    # internal: one side in its own process
    parser.add_argument("--worker", choices=["ours", "transformers-ner", "transformers-qa"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "ours":
        return worker_ours(args.rest, args.result)
    if args.worker:
        spec = json.loads(pathlib.Path(args.spec).read_text(encoding="utf-8"))
        worker = worker_transformers_ner if args.worker == "transformers-ner" else worker_transformers_qa
        return worker(spec, args.result)

    if shared_data_absent(VOCAB, *(() if args.only == "qa" else (KLUE_NER,)), *(() if args.only == "ner" else (KORQUAD,))):
        return 0
    started = time.perf_counter()
    work = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="parity-ner-qa-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        hf_dir = work / "hf-start"
        config = write_hf_start(hf_dir, args.layers, args.hidden, args.seed, positions=128)
        rows = []
        if args.only != "qa":
            ner = NerSettings(train=(0, args.ner_train), evaluation=(3000, 3000 + args.ner_eval),
                              epochs=args.ner_epochs, learning_rate=args.ner_lr)
            rows += ner_rows(work / "ner", hf_dir, ner)
        if args.only != "ner":
            qa = QaSettings(limit_train=args.qa_limit_train, eval_split=args.qa_eval_split,
                            epochs=args.qa_epochs, learning_rate=args.qa_lr)
            rows += qa_rows(work / "qa", hf_dir, qa)
        print(f"\nstart: a random BertForMaskedLM {config['num_hidden_layers']}x{config['hidden_size']} "
              f"({config['num_attention_heads']} heads, intermediate {config['intermediate_size']}, vocab "
              f"{config['vocab_size']:,}, {config['max_position_embeddings']} positions, erf gelu, dropout 0.1), torch seed "
              f"{args.seed}; AdamW eps {ADAM_EPSILON:g}, no weight decay, linear decay, no warmup, clip {CLIP_NORM}; "
              f"{os.cpu_count()} CPU cores")
        print(parity.describe_processes())
        print()
        print(format_rows(rows))
        print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nkept: {work} (hf-start/, ner/, qa/: slices, outputs, logs *.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
