"""Named-entity recognition as a fine-tuning task: a BIO label per token (``--task klue-ner``,
``--task word-tags``; another file name for either format is one more preset,
``TaskPreset(NerTask, NerSettings(..., file_format="word-tags"))``).

The files are read by :mod:`kcbert_tf.tasks.ner.files` in the settings' ``file_format`` (texts as
written: the tags belong to the characters, so nothing is cleaned); the labels are ``O`` and ``B-``/``I-`` of every entity type of
the training file, and an eval tag training never saw is an error.  Sentences are tokenized with
character offsets (``KcBertWordPiece.encode_with_offsets``, transformers' offsets), truncated to
``max_seq_length - 2`` tokens, packed as ``[CLS] tokens [SEP]`` and padded; the first token of each
labelled unit (word, or character for KLUE-NER) carries its label, the rest are ignored
(:mod:`kcbert_tf.tasks.ner.token_labels`).  The loss is the cross-entropy over the labelled tokens,
averaged over the global batch's labelled tokens whatever the replica count (transformers
averages over the batch's labelled tokens too).

Each epoch the eval file's predictions are mapped back to the units and scored at the entity
level with seqeval (:mod:`kcbert_tf.tasks.ner.metric`), against the file's own tags: an entity
cut off by truncation counts as missed.

A trained tagger (``finetune``'s, or a transformers ``BertForTokenClassification`` brought in with
``import-hf``, which tags words) predicts for one sentence a line, or a file in the training
format whose tags are ignored (:meth:`NerTask.predict_file`): per sentence a
``## ID<TAB>sentence`` line, one ``type<TAB>start<TAB>end<TAB>text`` line per entity (character
offsets), a blank line.
"""

from __future__ import annotations

import dataclasses
import logging

import tensorflow as tf

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.model.token_classifier_preprocessor import KcBertTokenClassifierPreprocessor
from kcbert_tf.tasks.contract import Evaluation, FineTuningTask, TaskPreset, TrainingSettings
from kcbert_tf.tasks.length_batches import eager_for_small_inputs, model_outputs
from kcbert_tf.tasks.ner.files import FORMATS, NerSentence, entity_spans, label_set, read_ner_file
from kcbert_tf.tasks.ner.metric import entity_scores
from kcbert_tf.tasks.ner.token_labels import IGNORED, ner_features, predicted_unit_tags
from kcbert_tf.tasks.prediction_output import write_predictions
from kcbert_tf.tasks.task_files import read_lines
from kcbert_tf.training.length_buckets import TrainingExamples

__all__ = ["NerSettings", "NerTask", "predict_entities"]

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NerSettings(TrainingSettings):
    """A NER task's settings: the shared ones and the format of its files (:data:`FORMATS`:
    ``klue-ner``, one character a line; ``word-tags``, words<TAB>tags)."""

    file_format: str = "word-tags"

    def check(self) -> None:
        super().check()
        if self.file_format not in FORMATS:
            raise UserError(f"unknown NER file format {self.file_format!r}; the formats are {', '.join(FORMATS)}")


class NerTask(FineTuningTask):
    """A token-classification task: read, batched, scored, predicted.  Texts are never cleaned:
    the tags belong to the characters as written."""

    head = "token_classification"
    evaluation_imports = ("seqeval.metrics",)
    settings_type = NerSettings
    serves_imported_models = True

    def __init__(self, name: str, settings: NerSettings, files, tokenizer):
        super().__init__(name, settings, files, tokenizer)
        self.preprocessor = KcBertTokenClassifierPreprocessor(tokenizer, sequence_length=settings.max_seq_length)
        self.train = read_ner_file(files.train, settings.file_format)[: files.limit_train or None]
        self.evaluation = read_ner_file(files.eval, settings.file_format)
        self.labels = label_set(self.train)
        unseen = sorted({tag for sentence in self.evaluation for tag in sentence.tags} - set(self.labels))
        if unseen:
            raise UserError(
                f"{files.eval}: tag(s) {unseen} never occur in {files.train} (its tags: {self.labels}); "
                "a tagger can only predict the tags it was trained on"
            )
        self.label_ids = {name: index for index, name in enumerate(self.labels)}
        word_piece = tokenizer.word_piece
        self._train_features = ner_features(word_piece, self.train, settings.max_seq_length, self.label_ids)
        self._eval_features = ner_features(word_piece, self.evaluation, settings.max_seq_length)
        _LOG.info("ner: %d labelled tokens in %d training sentences",
                  int((self._train_features["targets"] != IGNORED).sum()), len(self.train))

    @property
    def summary(self) -> dict:
        return {"train_examples": len(self.train), "eval_examples": len(self.evaluation),
                "format": self.settings.file_format}

    @property
    def options(self) -> dict:
        return {"file_format": self.settings.file_format}

    def describe(self) -> str:
        types = sorted({label[2:] for label in self.labels if label != "O"})
        return f"{len(types)} entity types {types}, {len(self.train)} train / {len(self.evaluation)} eval sentences"

    def compile_args(self) -> dict:
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def training_examples(self) -> TrainingExamples:
        features = self._train_features
        return TrainingExamples(features["inputs"], features["targets"], targets_per_token=True)

    def training_batch(self, inputs, targets, weights):
        """``(inputs, targets, weights)`` with per-token weights: 0 on ignored tokens and filler
        rows, the others scaled so that the compiled mean is the mean over the global batch's
        labelled tokens."""
        real = tf.cast(targets != IGNORED, tf.float32) * tf.cast(weights > 0, tf.float32)[:, None]
        scale = tf.cast(tf.size(real), tf.float32) / tf.maximum(tf.reduce_sum(real), 1.0)
        return inputs, tf.maximum(targets, 0), real * scale

    def evaluate(self, model) -> Evaluation:
        features = self._eval_features
        logits = model_outputs(model, features["inputs"], batch_size=self.settings.batch_size, per_token=True)
        predicted = predicted_unit_tags(logits, self.evaluation, features["spans"], self.labels)
        return Evaluation(entity_scores([list(sentence.tags) for sentence in self.evaluation], predicted))

    @classmethod
    def predict_file(cls, model, record: TaskRecord, input_path: str, output_path: str | None, *, batch_size: int,
                     text_columns=None):
        """Tag each sentence of ``input_path``; write its entities (see the module docstring)."""
        cls.refuse_text_columns(record, text_columns)
        file_format = record_file_format(record)
        sentences = _sentences_to_tag(input_path, file_format)
        found = predict_entities(model, [sentence.text for sentence in sentences], file_format, batch_size=batch_size)
        blocks = [
            "".join([f"## {sentence.id}\t{sentence.text}\n"] + [f"{kind}\t{start}\t{end}\t{text}\n" for kind, start, end, text in entities])
            for sentence, entities in zip(sentences, found)
        ]
        write_predictions(output_path, "\n".join(blocks), f"{len(sentences):,} sentence(s), {sum(map(len, found)):,} entities")
        return found


def record_file_format(record: TaskRecord) -> str:
    """The NER file format of a model's record: its option, or (a record written before options)
    its task's name when that is a format; a transformers tagger labels words."""
    return record.options.get("file_format") or (record.task if record.task in FORMATS else "word-tags")


def _sentences_to_tag(path: str, file_format: str) -> list[NerSentence]:
    """The sentences to tag: a file in the training format (its tags are not used), or plain text,
    one sentence a line."""
    lines = read_lines(path, f"one sentence a line, or a {file_format} file")
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("## ") or "\t" in first:
        return read_ner_file(path, "klue-ner" if FORMATS[file_format] == "characters" else "word-tags")
    texts = [line.rstrip("\r") for line in lines if line.strip()]
    return [NerSentence(f"line {i + 1}", text, (), ()) for i, text in enumerate(texts)]


def predict_entities(model, texts: list[str], file_format: str = "word-tags", *,
                     batch_size: int = 256) -> list[list[tuple[str, int, int, str]]]:
    """For each text, its entities as ``(type, start, end, text)`` (character offsets into it),
    tagging characters or words as ``file_format``'s units (:data:`FORMATS`), with ``model`` (a
    token classifier with its preprocessor)."""
    preprocessor = model.preprocessor
    words = FORMATS[file_format] == "words"
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
    with eager_for_small_inputs(len(sentences)):
        features = ner_features(preprocessor.tokenizer.word_piece, sentences, preprocessor.sequence_length)
        logits = model_outputs(model, features["inputs"], batch_size=batch_size, per_token=True)
    tags = predicted_unit_tags(logits, sentences, features["spans"], list(model.labels))
    return [
        [(kind, start, end, sentence.text[start:end]) for kind, start, end in entity_spans(sentence.units, sentence_tags)]
        for sentence, sentence_tags in zip(sentences, tags)
    ]


# KcBERT-Finetune's Naver NER settings, for KLUE-NER's file and for word<TAB>tags files
# (``pyproject.toml`` names them as entry points of the kcbert_tf.tasks group).
KLUE_NER = TaskPreset(NerTask, NerSettings("f1", 50, 20, 64, 8e-5, file_format="klue-ner"))
WORD_TAGS = TaskPreset(NerTask, NerSettings("f1", 50, 20, 64, 8e-5, file_format="word-tags"))
