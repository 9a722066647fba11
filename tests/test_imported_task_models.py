"""Transformers task models brought in with ``import-hf`` are used like fine-tuned ones: their task
record (task.json) is written with defaults, and ``kcbert-tf predict`` gives the labels, entity
spans and answers that transformers gives on the same inputs (the reference: transformers' own
tokenizer and model, decoded in plain Python here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import model_config, shared_file
from kcbert_tf.cli import main as cli
from kcbert_tf.cleaning import clean

LABELS = {
    "BertForSequenceClassification": ["부정", "중립", "긍정"],
    "BertForTokenClassification": ["O", "B-PS", "I-PS", "B-LC", "I-LC"],
    "BertForQuestionAnswering": None,
}


def transformers_model(path, architecture: str, vocab_file, seed: int = 3):
    """A random transformers task model with the real KcBERT vocab (the tiny config), saved."""
    import torch
    import transformers

    values = {k: v for k, v in model_config(vocab_size=30000, max_position_embeddings=128).items()
              if k not in ("architectures", "model_type")}
    labels = LABELS[architecture]
    if labels:
        values.update(id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(transformers.BertConfig(**values)).eval()
    with torch.no_grad():  # outputs with some spread, so that labels differ from text to text
        for name, tensor in model.named_parameters():
            tensor.add_(torch.randn_like(tensor) * 0.1)
            if name.startswith(("classifier", "qa_outputs", "bert.pooler")):
                tensor.mul_(10.0)
    model.save_pretrained(path)
    (path / "vocab.txt").write_bytes(vocab_file.read_bytes())
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}))
    return model


def reviews(count: int, longest: int = 200) -> list[str]:
    lines = shared_file("nsmc/train.txt").read_text(encoding="utf-8").split("\n")[1:]
    texts = [line.split("\t")[1] for line in lines if line.count("\t") == 2]
    return [text for text in texts if text.strip() and len(text) <= longest][:count]


def imported(tmp_path, architecture, kcbert_vocab):
    hf_dir = tmp_path / "hf"
    model = transformers_model(hf_dir, architecture, kcbert_vocab)
    assert cli(["import-hf", "--input", str(hf_dir), "--output", str(tmp_path / "ours")]) == 0
    from transformers import AutoTokenizer

    return model, AutoTokenizer.from_pretrained(str(hf_dir)), json.loads((tmp_path / "ours" / "task.json").read_text())


@pytest.mark.slow
def test_an_imported_sequence_classifier_predicts_transformers_labels_and_probabilities(tmp_path, kcbert_vocab):
    import torch

    model, tokenizer, record = imported(tmp_path, "BertForSequenceClassification", kcbert_vocab)
    assert (record["task"], record["head"], record["labels"], record["clean"], record["max_seq_length"]) == (
        None, "sequence_classification", LABELS["BertForSequenceClassification"], True, 128)
    texts = reviews(60)
    (tmp_path / "in.tsv").write_text("id\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    assert cli(["predict", "--model", str(tmp_path / "ours"), "--input", str(tmp_path / "in.tsv"),
                "--output", str(tmp_path / "out.tsv"), "--max-seq-length", "40", "--batch-size", "16"]) == 0
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text(encoding="utf-8").strip().split("\n")]
    assert rows[0] == ["id", "text", "predicted"] + [f"p_{name}" for name in LABELS["BertForSequenceClassification"]]

    batch = tokenizer([clean(t) for t in texts], truncation=True, max_length=40, padding=True, return_tensors="pt")
    with torch.no_grad():
        probabilities = torch.softmax(model(**batch).logits, -1).numpy()
    expected = [LABELS["BertForSequenceClassification"][i] for i in probabilities.argmax(-1)]
    assert [row[2] for row in rows[1:]] == expected and len(set(expected)) > 1
    got = np.asarray([[float(p) for p in row[3:]] for row in rows[1:]])
    assert np.abs(got - probabilities).max() <= 1e-4 + 5e-5  # written with 4 decimals

    # The SavedModel of the imported classifier: clean() in the graph as the record says, the
    # same labels and probabilities from raw text.
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the tokenizer's ops)

    assert cli(["export-savedmodel", "--model-dir", str(tmp_path / "ours"), "--output", str(tmp_path / "sm"),
                "--max-seq-length", "40"]) == 0
    served = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"](text=tf.constant(texts))
    assert [label.decode() for label in served["label"].numpy()] == expected
    assert np.abs(served["probabilities"].numpy() - probabilities).max() <= 1e-4


@pytest.mark.slow
def test_an_imported_token_classifier_tags_the_words_transformers_tags(tmp_path, kcbert_vocab):
    import torch
    from seqeval.metrics.sequence_labeling import get_entities

    model, tokenizer, record = imported(tmp_path, "BertForTokenClassification", kcbert_vocab)
    assert (record["task"], record["head"], record["clean"]) == (None, "token_classification", False)
    texts = [" ".join(text.split()) for text in reviews(40, longest=100)]
    (tmp_path / "in.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    assert cli(["predict", "--model", str(tmp_path / "ours"), "--input", str(tmp_path / "in.txt"),
                "--output", str(tmp_path / "entities.txt")]) == 0
    blocks = (tmp_path / "entities.txt").read_text(encoding="utf-8").split("\n\n")
    assert len(blocks) == len(texts)

    labels = LABELS["BertForTokenClassification"]
    found = 0
    for text, block in zip(texts, blocks):
        encoded = tokenizer(text, truncation=True, max_length=128, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded.pop("offset_mapping")[0].tolist()
        with torch.no_grad():
            predicted = model(**encoded).logits[0].argmax(-1).tolist()
        words, start = [], 0
        for word in text.split(" "):
            words.append((start, start + len(word)))
            start += len(word) + 1
        tags = []
        for begin, end in words:  # the label of a word's first token (transformers' convention)
            first = next(i for i, (a, b) in enumerate(offsets) if b > a and begin <= a < end)
            tags.append(labels[predicted[first]])
        expected = [f"{kind}\t{words[first][0]}\t{words[last][1]}\t{text[words[first][0]:words[last][1]]}"
                    for kind, first, last in get_entities(tags)]
        lines = block.strip("\n").split("\n")
        assert lines[0].split("\t")[1] == text and lines[1:] == expected
        found += len(expected)
    assert found > 10


@pytest.mark.slow
def test_an_imported_question_answerer_gives_transformers_best_spans(tmp_path, kcbert_vocab):
    import torch

    model, tokenizer, record = imported(tmp_path, "BertForQuestionAnswering", kcbert_vocab)
    assert (record["task"], record["head"], record["segments"]) == (None, "question_answering", 2)
    import keras_hub  # noqa: F401 - its import registers kcbert_tf's model directories with it

    from kcbert_tf.model.question_answerer import KcBertQuestionAnswerer

    # KorQuAD's windows cut to the 128 positions, carried by the model's preprocessor.
    windows = KcBertQuestionAnswerer.from_preset(str(tmp_path / "ours")).preprocessor.windows
    assert tuple(windows) == (70, 32, 30)
    # Contexts of at most 18 tokens: n-best over the top 20 starts and ends is then every span.
    contexts = [t for t in reviews(400) if len(tokenizer(t)["input_ids"]) <= 20][:30]
    questions = ["무슨 내용이야?", "어떤 영화?", "평점은?"]
    articles = [{"title": f"t{i}", "paragraphs": [{"context": context, "qas": [
        {"id": f"q{i}", "question": questions[i % 3], "answers": [{"text": context[:1], "answer_start": 0}]}]}]}
        for i, context in enumerate(contexts)]
    (tmp_path / "in.json").write_text(json.dumps({"version": "test", "data": articles}, ensure_ascii=False), encoding="utf-8")
    assert cli(["predict", "--model", str(tmp_path / "ours"), "--input", str(tmp_path / "in.json"),
                "--output", str(tmp_path / "answers.json")]) == 0
    answers = json.loads((tmp_path / "answers.json").read_text(encoding="utf-8"))

    expected = {}
    for i, context in enumerate(contexts):
        encoded = tokenizer(questions[i % 3], context, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded.pop("offset_mapping")[0].tolist()
        in_context = [j for j, side in enumerate(encoded.sequence_ids(0)) if side == 1]
        with torch.no_grad():
            out = model(**encoded)
        start, end = out.start_logits[0].numpy(), out.end_logits[0].numpy()
        best = max(((start[a] + end[b], a, b) for a in in_context for b in in_context if a <= b < a + 30),
                   key=lambda candidate: candidate[0])
        expected[f"q{i}"] = context[offsets[best[1]][0]:offsets[best[2]][1]]
    assert answers == expected and len(set(expected.values())) > 5


def test_predict_refuses_a_model_without_a_task_record(tmp_path, capsys, dropout_free_model_dir):
    (tmp_path / "in.tsv").write_text("text\n좋아요\n", encoding="utf-8")
    assert cli(["predict", "--model", str(dropout_free_model_dir), "--input", str(tmp_path / "in.tsv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "task.json: not found" in err[0] and "import-hf" in err[0] and "finetune" in err[0]
