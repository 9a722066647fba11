"""NER: KLUE-NER and word<TAB>tags files, labels aligned to WordPiece tokens and back, fine-tuning
that learns beyond the all-O baseline, predict, export to transformers (1 replica = 2 replicas:
tests/test_finetuning.py).

References: the files' own characters and tags (an independent plain-Python parse), transformers'
tokenizer and ``BertForTokenClassification``, seqeval's entity F1 (all-O scores 0).
"""

from __future__ import annotations

import json

import pytest

from conftest import REPO, shared_file
from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.tasks.ner.files import entity_spans, label_set, read_ner_file
from kcbert_tf.tasks.ner.token_labels import IGNORED, token_targets, unit_tags

SAMPLE = REPO / "tests" / "data" / "naver_ner_sample.tsv"


def klue_blocks(path) -> list[list[str]]:
    """KLUE-NER's sentences as line blocks (the '## klue-ner-…' line, then its character lines)."""
    blocks: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("## klue-ner"):
            blocks.append([line])
        elif blocks and line:
            blocks[-1].append(line)
    return blocks


def write_blocks(path, blocks):
    path.write_text("".join("\n".join(block) + "\n\n" for block in blocks), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def klue():
    return shared_file("klue-ner/train.tsv")


def test_klue_ner_reads_every_sentence_character_and_tag(klue):
    sentences = read_ner_file(klue, "klue-ner")
    blocks = klue_blocks(klue)
    assert len(sentences) == len(blocks) == 4000
    for sentence, block in zip(sentences, blocks):
        chars = [line.split("\t")[0] for line in block[1:]]
        tags = [line.split("\t")[1] for line in block[1:]]
        assert sentence.text == "".join(chars) and list(sentence.tags) == tags
        assert sentence.id == block[0][3:].split("\t")[0]
    # The '## id<TAB>tagged sentence' line marks each entity as <text:TYPE>: the same entities.
    import re

    for sentence, block in zip(sentences[:500], blocks[:500]):
        marked = re.findall(r"<([^<>]+):([A-Z]{2})>", block[0].split("\t", 1)[1])
        found = [(kind, sentence.text[start:end]) for kind, start, end in entity_spans(sentence.units, sentence.tags)]
        assert found == [(kind, text) for text, kind in marked], sentence.id
    assert label_set(sentences) == ["O"] + [f"{p}-{t}" for t in ("DT", "LC", "OG", "PS", "QT", "TI") for p in "BI"]


def test_word_tags_files_and_their_bad_lines(tmp_path):
    sentences = read_ner_file(SAMPLE, "word-tags")
    lines = [line for line in SAMPLE.read_text(encoding="utf-8").split("\n") if line]
    assert len(sentences) == len(lines)
    for sentence, line in zip(sentences, lines):
        words, tags = (field.split() for field in line.split("\t"))
        assert [sentence.text[a:b] for a, b in sentence.units] == words
        assert [t.split("-")[1] + "-" + t.split("-")[0] if t != "O" else "O" for t in tags] == list(sentence.tags)
    bad = {
        "김철수 씨\tPER-B\n": "bad.tsv:1: 2 words but 1 tags",
        "좋다\tO\n김철수\tPERSON\n": "bad.tsv:2: tag 'PERSON' is not a BIO tag",
        "김철수 씨\n": "bad.tsv:1: 1 tab-separated fields",
    }
    for text, message in bad.items():
        (tmp_path / "bad.tsv").write_text(text, encoding="utf-8")
        with pytest.raises(UserError, match=message):
            read_ner_file(tmp_path / "bad.tsv", "word-tags")
    (tmp_path / "bad.tsv").write_text("## klue-ner-1\tx\n가\tB-PS\n나\n", encoding="utf-8")
    with pytest.raises(UserError, match="bad.tsv:3: expected one character, a tab and its tag"):
        read_ner_file(tmp_path / "bad.tsv", "klue-ner")


def test_alignment_round_trips_every_word_and_loses_only_entities_that_end_or_start_inside_a_token(klue, kcbert_vocab):
    """Gold tags → the tokens' training labels → back to the units, with our tokenizer's offsets:
    exact for words; for KLUE's characters, exact but for entities that start or end where no
    token does (inside a WordPiece token, or on a space: no token label can say it), each
    checked to be one."""
    from kcbert_tf.text.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(kcbert_vocab)
    for path, file_format in ((SAMPLE, "word-tags"), (klue, "klue-ner")):
        sentences = read_ner_file(path, file_format)
        labels = label_set(sentences)
        ids = {name: i for i, name in enumerate(labels)}
        encoded = tokenizer.encode_with_offsets([s.text for s in sentences])
        kept = lost = 0
        for sentence, (_, offsets) in zip(sentences, encoded):
            targets = token_targets(sentence.units, sentence.tags, offsets, ids)
            back = unit_tags(sentence.units, offsets, [labels[t] if t != IGNORED else "O" for t in targets])
            gold = set(entity_spans(sentence.units, sentence.tags))
            recovered = gold & set(entity_spans(sentence.units, back))
            kept, lost = kept + len(recovered), lost + len(gold - recovered)
            starts, ends = {start for start, _ in offsets}, {end for _, end in offsets}
            for _, start, end in gold - recovered:  # a boundary that is no token boundary
                assert file_format == "klue-ner" and (start not in starts or end not in ends), (sentence.text, start, end)
        if file_format == "word-tags":
            assert lost == 0 and kept > 100
        else:
            assert kept > 0.75 * (kept + lost), (kept, lost)


@pytest.mark.slow
def test_klue_ner_learns_beyond_all_o_predicts_spans_and_exports_to_transformers(klue, dropout_free_model_dir, tmp_path):
    blocks = klue_blocks(klue)
    train, evaluation = write_blocks(tmp_path / "train.tsv", blocks[:1500]), write_blocks(tmp_path / "eval.tsv", blocks[3000:3400])
    out = tmp_path / "ner"
    assert cli(["finetune", "--task", "klue-ner", "--train", str(train), "--eval", str(evaluation), "--init", str(dropout_free_model_dir),
                "--output", str(out), "--epochs", "4", "--batch-size", "32", "--learning-rate", "1e-3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    record = json.loads((out / "task.json").read_text(encoding="utf-8"))
    assert (record["task"], record["head"], record["clean"]) == ("klue-ner", "token_classification", False)
    assert len(metrics["epochs"]) == 4
    # A tagger that says O everywhere finds no entity: F1 0 (seqeval on the same sequences).
    from seqeval.metrics import f1_score

    gold = [list(s.tags) for s in read_ner_file(evaluation, "klue-ner")]
    assert f1_score(gold, [["O"] * len(tags) for tags in gold]) == 0
    assert metrics["best"]["f1"] > 0.05, metrics["best"]
    assert set(metrics["best"]["per_type"]) <= {"DT", "LC", "OG", "PS", "QT", "TI"}
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"] and config["id2label"]["0"] == "O"

    # predict: entity spans are character offsets into the sentence, and they are the ones the
    # model's own logits give (decoded here with seqeval's entity reader).
    sentences = read_ner_file(evaluation, "klue-ner")[:50]
    plain = tmp_path / "sentences.txt"
    plain.write_text("".join(s.text + "\n" for s in sentences), encoding="utf-8")
    assert cli(["predict", "--model", str(out), "--input", str(plain), "--output", str(tmp_path / "entities.txt")]) == 0
    blocks_out = (tmp_path / "entities.txt").read_text(encoding="utf-8").split("\n\n")
    assert len(blocks_out) == 50
    from seqeval.metrics.sequence_labeling import get_entities

    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import load_model
    from kcbert_tf.tasks.ner.token_labels import ner_features
    from kcbert_tf.tasks.ner.token_labels import predicted_unit_tags
    from kcbert_tf.text.tokenizer import KcBertWordPiece

    source = ModelDir.read(out)
    features = ner_features(KcBertWordPiece(source.vocab), sentences, 50)
    tags = predicted_unit_tags(load_model(source).predict(features["inputs"], verbose=0), sentences, features["spans"], record["labels"])
    for sentence, block, sentence_tags in zip(sentences, blocks_out, tags):
        lines = block.strip("\n").split("\n")
        assert lines[0] == f"## line {sentences.index(sentence) + 1}\t{sentence.text}"
        found = [line.split("\t") for line in lines[1:]]
        for kind, start, end, text in found:
            assert sentence.text[int(start):int(end)] == text
        expected = [(kind, start, end + 1) for kind, start, end in get_entities(sentence_tags)]
        assert [(k, int(s), int(e)) for k, s, e, _ in found] == expected

    assert cli(["export-hf", "--model-dir", str(out), "--output", str(tmp_path / "hf")]) == 0
    from transformers import AutoModelForTokenClassification

    hf = AutoModelForTokenClassification.from_pretrained(str(tmp_path / "hf"))
    assert hf.config.id2label == {int(k): v for k, v in config["id2label"].items()}


def test_an_eval_tag_training_never_saw_is_one_line_and_nothing_is_written(dropout_free_model_dir, tmp_path, capsys):
    (tmp_path / "eval.tsv").write_text("김철수 씨가 왔다\tPER-B O EVENT-B\n", encoding="utf-8")
    code = cli(["finetune", "--task", "word-tags", "--train", str(SAMPLE), "--eval", str(tmp_path / "eval.tsv"),
                "--init", str(dropout_free_model_dir), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "tag(s) ['B-EVENT'] never occur in" in err[-1] and not (tmp_path / "out").exists()


def test_a_ner_task_registered_under_a_name_of_its_own_reads_the_format_its_settings_name(capsys):
    """The file format is a setting, not the task's name: ``naver-ner`` registered with the
    word-tags settings reads word<TAB>tags files, and its record keeps the format for predict."""
    import dataclasses

    from kcbert_tf.model.tokenizer import KcBertTokenizer
    from kcbert_tf.tasks.contract import TaskFiles
    from kcbert_tf.tasks.ner.task import NerSettings, NerTask
    from kcbert_tf.tasks.registry import preset, register_task, unregister_task

    settings = dataclasses.replace(preset("word-tags").settings, max_seq_length=32)
    register_task("naver-ner", NerTask, settings)
    try:
        chosen = preset("naver-ner")
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({c for c in SAMPLE.read_text(encoding="utf-8")
                                                                          if c.strip()})
        task = chosen.task("naver-ner", chosen.settings, TaskFiles(str(SAMPLE), str(SAMPLE)),
                           KcBertTokenizer(vocabulary=vocab))
        assert task.train_size == len(read_ner_file(SAMPLE, "word-tags"))
        record = task.record()
        assert (record.task, record.options, record.max_seq_length) == ("naver-ner", {"file_format": "word-tags"}, 32)
        with pytest.raises(UserError, match="unknown NER file format 'naver'"):
            NerSettings("f1", 50, 1, 8, 1e-3, file_format="naver").check()
    finally:
        unregister_task("naver-ner")
