"""The task record (task.json): written and read back, checked against the config, read from an
old fine-tuned directory's metrics.json, and bad records named with their file."""

from __future__ import annotations

import json

import pytest

from kcbert_tf.errors import UserError
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import TaskRecord

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아"]
BASE = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=16, max_position_embeddings=40)


def test_a_record_is_written_beside_the_model_and_read_back_by_model_dir(tmp_path):
    config = BASE.with_labels(["neg", "pos"])
    columns = {"text": "document", "label": "label", "text_pair": None}
    record = TaskRecord("nsmc", config.head, 32, clean=True, labels=("neg", "pos"), options={"columns": columns})
    ModelDir.write(str(tmp_path), config, VOCAB, task=record)
    on_disk = json.loads((tmp_path / "task.json").read_text())
    assert on_disk == {"task": "nsmc", "head": "sequence_classification", "max_seq_length": 32, "clean": True,
                       "labels": ["neg", "pos"], "segments": 1, "options": {"columns": columns}}
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
    record = TaskRecord("custom", config.head, 32, clean=True, labels=("neg", "pos"))
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
        "korquad", "question_answering", 96, clean=False, segments=2,
        options={"doc_stride": 48, "max_query_length": 24, "max_answer_length": 30})
    ModelDir.write(str(tmp_path / "sts"), BASE.with_labels(None), VOCAB)
    (tmp_path / "sts" / "metrics.json").write_text(json.dumps({
        "task": "korsts", "kind": "sentence", "labels": None, "clean": True,
        "columns": {"text": "sentence1", "label": "score", "text_pair": "sentence2"},
        "settings": {"max_seq_length": 72, "doc_stride": 128, "max_query_length": 64, "max_answer_length": 30}}))
    assert ModelDir.read(str(tmp_path / "sts"), need_weights=False).task == TaskRecord(
        "korsts", "sequence_classification", 72, clean=True, segments=2,
        options={"columns": {"text": "sentence1", "label": "score", "text_pair": "sentence2"}})


def test_a_record_written_before_options_is_read_with_its_columns_and_windows():
    """task.json as finetune and import-hf wrote it before segments and options: the columns and
    the windows move into options, a pair or a question answerer packs two texts."""
    old = {"task": "custom", "head": "sequence_classification", "max_seq_length": 72, "clean": True, "labels": None,
           "columns": {"text": "a", "label": "s", "text_pair": "b"}, "qa": None, "options": {}}
    record = TaskRecord.from_dict(old, "task.json")
    assert (record.segments, record.options, record.min_seq_length) == (
        2, {"columns": {"text": "a", "label": "s", "text_pair": "b"}}, 4)
    qa = {"task": "korquad", "head": "question_answering", "max_seq_length": 300, "clean": False, "labels": None,
          "columns": None, "qa": {"doc_stride": 128, "max_query_length": 64, "max_answer_length": 30}, "options": {}}
    assert TaskRecord.from_dict(qa, "task.json").options == qa["qa"]


def test_a_model_without_a_record_is_used_with_the_defaults_of_its_head():
    """No task named (the registry's task for the head serves it), the full positions, labels from
    id2label (a regressor has none), cleaning for a sentence classifier only, two texts for QA."""
    values = {**BASE.to_hf_dict(), "architectures": ["BertForSequenceClassification"],
              "id2label": {"0": "부정", "1": "긍정"}}
    config = BertConfig.from_dict(values)
    record = TaskRecord.default(config.head, config.max_position_embeddings, config.labels)
    assert (record.task, record.labels, record.max_seq_length, record.clean, record.segments) == (
        None, ("부정", "긍정"), 40, True, 1)
    regressor = BertConfig.from_dict({**values, "id2label": {"0": "LABEL_0"}, "problem_type": "regression"})
    assert TaskRecord.default(regressor.head, 40, regressor.labels).labels is None
    tagger = BertConfig.from_dict({**values, "architectures": ["BertForTokenClassification"],
                                   "id2label": {"0": "O", "1": "B-PS", "2": "I-PS"}})
    assert TaskRecord.default(tagger.head, 40, tagger.labels).clean is False
    assert TaskRecord.default("question_answering", 40).segments == 2
    assert TaskRecord.default("masked_lm", 40).clean is False  # a masked LM takes texts as they are
