"""Fine-tuning inputs: task files read as KcBERT-Finetune reads them, and the task presets.

References: the row counts and the settings table of ../shared/data/README.md (written by the
people who built those files), and the files split by hand on tabs.
"""

from __future__ import annotations

import csv
import dataclasses
import re

import pytest

from conftest import shared_file
from kcbert_tf.errors import UserError
from kcbert_tf.text.cleaning import clean
from kcbert_tf.tasks.contract import TaskFiles
from kcbert_tf.tasks.registry import preset
from kcbert_tf.tasks.sentence.files import Columns, read_examples
from kcbert_tf.tasks.sentence.task import SentenceSettings, SentenceTask

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tokenizer():
    from kcbert_tf.model.tokenizer import KcBertTokenizer

    return KcBertTokenizer(vocabulary=SPECIALS + ["좋", "##아요"])

#: (file, preset) → (examples, labels) as the shared data's README states them.
COUNTS = {
    ("nsmc/train.txt", "nsmc"): (10_000, {"0", "1"}),
    ("hate-speech/train.tsv", "hate-speech"): (7_896, {"none", "offensive", "hate"}),
    ("hate-speech/dev.tsv", "hate-speech"): (471, {"none", "offensive", "hate"}),
    ("kornli/train.tsv", "kornli"): (2_490, {"contradiction", "entailment", "neutral"}),
    ("kornli/dev.tsv", "kornli"): (999, {"contradiction", "entailment", "neutral"}),
    ("korsts/train.tsv", "korsts"): (5_000, None),
    ("korsts/dev.tsv", "korsts"): (1_000, None),
    ("paws/train.tsv", "paws"): (2_000, {"0", "1"}),
    ("paws/dev.tsv", "paws"): (1_000, {"0", "1"}),
    ("question-pair/train.tsv", "question-pair"): (5_000, {"0", "1"}),
    ("question-pair/dev.tsv", "question-pair"): (682, {"0", "1"}),
}


@pytest.mark.parametrize("relative, task", sorted(COUNTS))
def test_the_shared_task_files_read_whole_with_their_presets(relative, task):
    path = shared_file(relative)
    count, labels = COUNTS[(relative, task)]
    settings = preset(task).settings
    examples = read_examples(path, settings.columns, regression=settings.regression)
    assert len(examples) == count
    if labels is None:
        assert all(0 <= float(label) <= 5 for label in examples.labels)
    else:
        assert set(examples.labels) == labels
    # The reference: the file split by hand on tabs, the text as written; the task prepares it as
    # KcBERT's clean() (in Python) does.
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line]
    at = header.index(settings.columns.text)
    assert examples.texts == [row[at] for row in rows]
    fine_tuning = SentenceTask(task, settings, TaskFiles(str(path), str(path)), tokenizer())
    assert fine_tuning.train.texts == [clean(row[at]) for row in rows] and fine_tuning.train.empty == 0


def test_default_csv_quoting_would_merge_rows_which_the_reader_does_not():
    """The trap the shared README names: KorNLI read with Python's default CSV quoting loses rows."""
    path = shared_file("kornli/train.tsv")
    with open(path, encoding="utf-8", newline="") as handle:
        quoted = sum(1 for _ in csv.reader(handle, delimiter="\t")) - 1
    assert quoted < 2_490 == len(read_examples(path, preset("kornli").settings.columns))


def test_presets_carry_kcbert_finetune_s_settings():
    """Each preset against the settings table of ../shared/data/README.md."""
    readme = shared_file("README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"\d+", cells[1] or "") and cells[0] != "task":
            rows[cells[0]] = cells
    names = {"nsmc": "NSMC", "kornli": "KorNLI", "paws": "PAWS", "korsts": "KorSTS", "question-pair": "Question Pair"}
    for task, title in names.items():
        _, length, epochs, batch, lr, metric = rows[title]
        settings = preset(task).settings
        assert (settings.max_seq_length, settings.epochs, settings.batch_size) == (int(length), int(epochs), int(batch))
        assert settings.learning_rate == float(lr)
        assert settings.metric == ("spearman" if "Spearman" in metric else "accuracy")
        assert (settings.adam_epsilon, settings.weight_decay, settings.warmup_steps, settings.clip_norm) == (1e-8, 0, 0, 1.0)
    _, length, epochs, batch, lr, metric = rows["NER"]
    for task in ("klue-ner", "word-tags"):
        settings = preset(task).settings
        assert preset(task).task.head == "token_classification"
        assert (settings.max_seq_length, settings.epochs, settings.batch_size) == (int(length), int(epochs), int(batch))
        assert settings.learning_rate == float(lr) and settings.metric == "f1" and "entity F1" in metric
    korquad = next(line for line in readme.splitlines() if line.startswith("| KorQuAD |"))
    cells = [cell.strip() for cell in korquad.strip().strip("|").split("|")]
    numbers = [int(n) for n in re.findall(r"\d+", cells[1])]
    settings = preset("korquad").settings
    assert numbers == [settings.max_seq_length, settings.doc_stride, settings.max_query_length, settings.max_answer_length]
    assert (settings.epochs, settings.batch_size, settings.learning_rate) == (int(cells[2]), int(cells[3]), float(cells[4]))
    assert preset("korquad").task.head == "question_answering" and "EM / F1" in cells[5]


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_files_are_one_clear_error_naming_file_and_line(tmp_path):
    columns = Columns("sentence1", "label", "sentence2")
    good = "sentence1\tsentence2\tlabel\n"
    with pytest.raises(UserError, match=r"no column 'sentence2'; the header has \['sentence1', 'label'\]"):
        read_examples(write(tmp_path / "a.tsv", "sentence1\tlabel\n가\t1\n"), columns)
    with pytest.raises(UserError, match=r"b.tsv:3: 2 tab-separated fields, the header has 3"):
        read_examples(write(tmp_path / "b.tsv", good + "가\t나\t1\n다\t1\n"), columns)
    with pytest.raises(UserError, match=r"c.tsv:2: label 'high' is not a number"):
        read_examples(write(tmp_path / "c.tsv", good + "가\t나\thigh\n"), columns, regression=True)
    with pytest.raises(UserError, match=r"d.tsv: no such file"):
        read_examples(tmp_path / "d.tsv", columns)
    with pytest.raises(UserError, match=r"e.tsv: not UTF-8"):
        (tmp_path / "e.tsv").write_bytes(good.encode() + b"\xff\xfe\t\xc0\t1\n")
        read_examples(tmp_path / "e.tsv", columns)


def test_empty_texts_are_counted_and_skipped(tmp_path):
    path = write(tmp_path / "t.tsv", "document\tlabel\n좋아요\t1\n\t0\n   \t0\n🙂🙂\t1\n싫어요\r\n")
    with pytest.raises(UserError, match=r"t.tsv:6: 1 tab-separated fields"):
        read_examples(path, Columns("document", "label"))
    path = write(tmp_path / "t.tsv", "document\tlabel\n좋아요\t1\n\t0\n   \t0\n싫어요\t0\r\n漢字\t1\n")
    assert read_examples(path, Columns("document", "label")).texts == ["좋아요", "", "   ", "싫어요", "漢字"]
    settings = SentenceSettings("accuracy", 16, 1, 1, 1e-3, text_column="document", label_column="label")
    cleaned = SentenceTask("custom", settings, TaskFiles(str(path), str(path)), tokenizer()).train
    assert (cleaned.texts, cleaned.labels, cleaned.empty) == (["좋아요", "싫어요"], ["1", "0"], 3)  # clean() drops 漢字
    as_given = SentenceTask("custom", dataclasses.replace(settings, clean=False), TaskFiles(str(path), str(path)),
                            tokenizer()).train
    assert (as_given.texts, as_given.empty) == (["좋아요", "싫어요", "漢字"], 2)

