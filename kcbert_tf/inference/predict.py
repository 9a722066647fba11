"""``kcbert-tf predict``: a fine-tuned model's predictions for a file.

    kcbert-tf predict --model runs/kcbert-base-nsmc --input reviews.tsv --output predictions.tsv
    kcbert-tf predict --model runs/kcbert-base-ner --input sentences.txt --output entities.txt
    kcbert-tf predict --model runs/kcbert-base-korquad --input questions.json --output predictions.json

What the model was fine-tuned on (``metrics.json`` of the model directory) decides the format:

- **a sentence task**: the input has the columns the model was fine-tuned on (a label column may
  be there or not) and is read and cleaned the same way.  The output is tab-separated, one line per
  input example in input order: the input's columns, then ``predicted`` and each class's
  probability (``p_LABEL``), or the score for a regressor.  Examples with an empty text get an
  empty prediction.  A progress line every 10,000 examples.
- **NER**: the input is one sentence a line (or a file in the training format, whose tags are
  ignored).  The output has, per sentence, a ``## ID<TAB>sentence`` line, then one line per entity,
  ``type<TAB>start<TAB>end<TAB>text`` (character offsets into the sentence), then a blank line.
- **QA** (KorQuAD): the input is SQuAD v1 JSON; the output is SQuAD's prediction file,
  ``{question_id: answer_text}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.text.task_files import read_rows

__all__ = ["predict", "run"]

BATCH = 256


def predict(model_dir: str, rows: list[dict], *, progress=None) -> list[dict]:
    """For each input row (column → text), ``{"predicted": label, "p_LABEL": ...}`` or
    ``{"predicted": score}``; ``{}`` where the text is empty."""
    import numpy as np
    import tensorflow as tf

    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.cleaning import clean
    from kcbert_tf.text.model_inputs import pack_fixed

    source = ModelDir.read(model_dir)
    task = source.fine_tuning_record(required=True)
    model = source.load_classifier()
    tokenizer = source.tokenizer()
    columns, length = task["columns"], task["settings"]["max_seq_length"]
    prepare = clean if task.get("clean", True) else str.strip
    texts = [prepare(row[columns["text"]]) for row in rows]
    pairs = [prepare(row[columns["text_pair"]]) for row in rows] if columns.get("text_pair") else None
    usable = [i for i in range(len(rows)) if texts[i] and (pairs is None or pairs[i])]
    labels = task["labels"]
    results: list[dict] = [{} for _ in rows]
    for start in range(0, len(usable), BATCH):
        chosen = usable[start : start + BATCH]
        inputs = pack_fixed(
            tokenizer,
            tf.constant([texts[i] for i in chosen]),
            None if pairs is None else tf.constant([pairs[i] for i in chosen]),
            length,
        )
        outputs = np.asarray(model(inputs, training=False))
        if labels is None:
            for i, value in zip(chosen, outputs[:, 0]):
                results[i] = {"predicted": f"{float(value):.4f}"}
        else:
            probabilities = np.exp(outputs - outputs.max(-1, keepdims=True))
            probabilities /= probabilities.sum(-1, keepdims=True)
            for i, row in zip(chosen, probabilities):
                results[i] = {"predicted": labels[int(row.argmax())], **{f"p_{name}": f"{p:.4f}" for name, p in zip(labels, row)}}
        if progress:
            progress(min(start + BATCH, len(usable)), len(usable))
    return results


def _ner_sentences(path: str, file_format: str):
    """The sentences to tag: a file in the training format (its tags are not used), or plain text,
    one sentence a line."""
    from kcbert_tf.text.ner_files import NerSentence, read_ner_file

    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().removeprefix("\ufeff").split("\n")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (give one sentence a line, or a {file_format} file)") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 (byte {error.start}); save it as UTF-8") from None
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("## ") or "\t" in first:
        return read_ner_file(path, file_format)
    texts = [line.rstrip("\r") for line in lines if line.strip()]
    return [NerSentence(f"line {i + 1}", text, (), ()) for i, text in enumerate(texts)]


def predict_entities(model_dir: str, texts: list[str]) -> list[list[tuple[str, int, int, str]]]:
    """For each text, its entities as ``(type, start, end, text)`` (character offsets into it)."""
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.ner_files import NerSentence, entity_spans
    from kcbert_tf.text.token_labels import ner_features, predicted_unit_tags

    source = ModelDir.read(model_dir)
    task = source.fine_tuning_record(required=True)
    model, tokenizer = source.load_model(), source.tokenizer()
    words = task.get("format") == "word-tags"
    sentences = []
    for index, text in enumerate(texts):
        if words:  # the units are the words, as in training
            units, start = [], 0
            for word in text.split(" "):
                if word:
                    units.append((start, start + len(word)))
                start += len(word) + 1
        else:
            units = [(i, i + 1) for i in range(len(text))]
        sentences.append(NerSentence(str(index), text, tuple(units), ("O",) * len(units)))
    features = ner_features(tokenizer, sentences, task["settings"]["max_seq_length"])
    logits = np.asarray(model.predict(features["inputs"], batch_size=BATCH, verbose=0))
    tags = predicted_unit_tags(logits, sentences, features["spans"], task["labels"])
    return [
        [(kind, start, end, sentence.text[start:end]) for kind, start, end in entity_spans(sentence.units, sentence_tags)]
        for sentence, sentence_tags in zip(sentences, tags)
    ]


def predict_answers(model_dir: str, questions) -> dict[str, str]:
    """``{question id: answer text}`` for questions (:class:`~kcbert_tf.text.squad_files.QAExample`,
    e.g. ``read_squad(path, training=False).examples``)."""
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.qa_decoding import answer_questions
    from kcbert_tf.text.qa_features import features_with_tokenizer

    source = ModelDir.read(model_dir)
    task = source.fine_tuning_record(required=True)
    settings = task["settings"]
    model = source.load_model()
    features = features_with_tokenizer(
        questions, source.tokenizer(), training=False, max_length=settings["max_seq_length"],
        doc_stride=settings["doc_stride"], max_query_length=settings["max_query_length"],
    )
    return answer_questions(model, questions, features, batch_size=BATCH, max_answer_length=settings["max_answer_length"])


def _write(path: str | None, text: str, what: str) -> None:
    if path:
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
        print(f"predict: {what} -> {path}", flush=True)
    else:
        sys.stdout.write(text)


def run(argv: Sequence[str] | None = None) -> list:
    parser = argparse.ArgumentParser(prog="kcbert-tf predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory written by `kcbert-tf finetune`")
    parser.add_argument("--input", required=True, help="sentence tasks: tab-separated, a header line, the training "
                        "columns; NER: one sentence a line (or a file in the training format); korquad: SQuAD v1 JSON")
    parser.add_argument("--output", default=None, help="where to write the predictions (default: stdout)")
    args = parser.parse_args(argv)
    from kcbert_tf.model.model_dir import ModelDir

    task = ModelDir.read(args.model).fine_tuning_record(required=True)
    kind = task.get("kind", "sentence")
    if kind == "ner":
        sentences = _ner_sentences(args.input, task["format"])
        found = predict_entities(args.model, [sentence.text for sentence in sentences])
        blocks = [
            "".join([f"## {sentence.id}\t{sentence.text}\n"] + [f"{kind}\t{start}\t{end}\t{text}\n" for kind, start, end, text in entities])
            for sentence, entities in zip(sentences, found)
        ]
        _write(args.output, "\n".join(blocks), f"{len(sentences):,} sentence(s), {sum(map(len, found)):,} entities")
        return found
    if kind == "qa":
        from kcbert_tf.text.squad_files import read_squad

        answers = predict_answers(args.model, read_squad(args.input, training=False).examples)
        _write(args.output, json.dumps(answers, ensure_ascii=False, indent=2) + "\n", f"{len(answers):,} answer(s)")
        return answers
    needed = [name for name in (task["columns"]["text"], task["columns"].get("text_pair")) if name]
    header, numbered = read_rows(args.input, needed)
    rows = [dict(zip(header, fields)) for _, fields in numbered]

    def progress(done: int, total: int) -> None:
        if done % 10_000 < BATCH or done == total:
            print(f"  predicted {done:,} / {total:,}", file=sys.stderr, flush=True)

    results = predict(args.model, rows, progress=progress if len(rows) > 10_000 else None)
    labels = task["labels"]
    extra = ["predicted"] + ([] if labels is None else [f"p_{name}" for name in labels])
    out_lines = ["\t".join(header + extra)]
    out_lines += ["\t".join([row[name] for name in header] + [result.get(name, "") for name in extra]) for row, result in zip(rows, results)]
    _write(args.output, "\n".join(out_lines) + "\n", f"{len(rows):,} example(s)")
    return results
