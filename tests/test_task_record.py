"""The task record (task.json): written and read back, checked against the config, read from an
old fine-tuned directory's metrics.json, and bad records named with their file."""

from __future__ import annotations

import json

import pytest

from kcbert_tf.errors import UserError
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import QaWindows, TaskColumns, TaskRecord, default_record

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아"]
BASE = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=16, max_position_embeddings=40)


def test_a_record_is_written_beside_the_model_and_read_back_by_model_dir(tmp_path):
    config = BASE.with_labels(["neg", "pos"])
    record = TaskRecord("nsmc", config.head, 32, clean=True, labels=("neg", "pos"), columns=TaskColumns("document", "label"))
    ModelDir.write(str(tmp_path), config, VOCAB, task=record)
    on_disk = json.loads((tmp_path / "task.json").read_text())
    assert on_disk == {"task": "nsmc", "head": "sequence_classification", "max_seq_length": 32, "clean": True,
                       "labels": ["neg", "pos"], "columns": {"text": "document", "label": "label", "text_pair": None},
                       "qa": None, "options": {}}
    assert ModelDir.read(str(tmp_path), need_weights=False).task == record
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("change, message", [
    ({"labels": ["pos", "neg"]}, r"has the labels \['pos', 'neg'\] but"),
    ({"head": "token_classification"}, "is for a token_classification head but"),
    ({"max_seq_length": 0}, "max_seq_length must be a positive integer"),
    ({"colour": "blue"}, "not a task record"),
])
def test_a_record_that_does_not_fit_its_model_is_one_clear_error(tmp_path, change, message):
    config = BASE.with_labels(["neg", "pos"])
    record = TaskRecord("custom", config.head, 32, clean=True, labels=("neg", "pos"), columns=TaskColumns("text", "label"))
    ModelDir.write(str(tmp_path), config, VOCAB, task=record)
    (tmp_path / "task.json").write_text(json.dumps({**record.to_dict(), **change}))
    with pytest.raises(UserError, match=message) as error:
        ModelDir.read(str(tmp_path), need_weights=False)
    assert "task.json" in str(error.value)


def test_an_old_fine_tuned_directory_keeps_working_from_its_metrics_json(tmp_path):
    """Before task.json, finetune wrote the record into metrics.json: a QA and a sentence one."""
    ModelDir.write(str(tmp_path / "qa"), BASE.for_question_answering(), VOCAB)
    (tmp_path / "qa" / "metrics.json").write_text(json.dumps({
        "task": "korquad", "kind": "qa", "labels": None, "clean": False, "best": {"f1": 1.0},
        "settings": {"max_seq_length": 96, "doc_stride": 48, "max_query_length": 24, "max_answer_length": 30}}))
    assert ModelDir.read(str(tmp_path / "qa"), need_weights=False).task == TaskRecord(
        "korquad", "question_answering", 96, clean=False, qa=QaWindows(48, 24, 30))
    ModelDir.write(str(tmp_path / "sts"), BASE.with_labels(None), VOCAB)
    (tmp_path / "sts" / "metrics.json").write_text(json.dumps({
        "task": "korsts", "kind": "sentence", "labels": None, "clean": True,
        "columns": {"text": "sentence1", "label": "score", "text_pair": "sentence2"},
        "settings": {"max_seq_length": 72, "doc_stride": 128, "max_query_length": 64, "max_answer_length": 30}}))
    assert ModelDir.read(str(tmp_path / "sts"), need_weights=False).task == TaskRecord(
        "korsts", "sequence_classification", 72, clean=True, columns=TaskColumns("sentence1", "score", "sentence2"))


def test_import_defaults_follow_the_transformers_config():
    """labels from id2label (a regressor has none), the full positions, cleaning for sentences only."""
    values = {**BASE.to_hf_dict(), "architectures": ["BertForSequenceClassification"],
              "id2label": {"0": "부정", "1": "긍정"}}
    record = default_record(BertConfig.from_dict(values))
    assert (record.task, record.labels, record.max_seq_length, record.clean, record.columns.text) == (
        "custom", ("부정", "긍정"), 40, True, "text")
    regressor = default_record(BertConfig.from_dict({**values, "id2label": {"0": "LABEL_0"}, "problem_type": "regression"}))
    assert regressor.labels is None
    tagger = default_record(BertConfig.from_dict({**values, "architectures": ["BertForTokenClassification"],
                                                  "id2label": {"0": "O", "1": "B-PS", "2": "I-PS"}}))
    assert (tagger.task, tagger.labels, tagger.clean) == ("word-tags", ("O", "B-PS", "I-PS"), False)
    answerer = default_record(BertConfig.from_dict({**values, "architectures": ["BertForQuestionAnswering"]}))
    # KorQuAD's windows cut to 40 positions: a question of at most 10 tokens, 27 context tokens a
    # window, the stride leaving a quarter of them (6) as overlap.
    assert (answerer.task, answerer.labels, answerer.qa) == ("korquad", None, QaWindows(21, 10, 30))
    assert default_record(BertConfig.from_dict({**values, "architectures": ["BertForMaskedLM"]})) is None
