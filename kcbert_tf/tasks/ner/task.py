"""Named-entity recognition as a fine-tuning task: a BIO label per token (``--task klue-ner``,
``--task word-tags``).

The files are read by :mod:`kcbert_tf.tasks.ner.files` (texts as written: the tags belong to the
characters, so nothing is cleaned); the labels are ``O`` and ``B-``/``I-`` of every entity type of
the training file, and an eval tag training never saw is an error.  Sentences are tokenized with
character offsets (``KcBertTokenizer.encode_with_offsets``, transformers' offsets), truncated to
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

import logging

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.tasks.contract import FineTuningTask
from kcbert_tf.tasks.ner.metric import entity_scores
from kcbert_tf.tasks.ner.token_labels import ner_features, predicted_unit_tags

__all__ = ["NerTask", "predict_entities"]

_LOG = logging.getLogger(__name__)


class NerTask(FineTuningTask):
    """A token-classification task: read, batched, scored, predicted.  Texts are never cleaned:
    the tags belong to the characters as written."""

    head = "token_classification"

    def __init__(self, settings, files):
        from kcbert_tf.tasks.ner.files import label_set, read_ner_file

        super().__init__(settings, files)
        train_path, eval_path = files.train, files.eval
        self.train = read_ner_file(train_path, settings.name)[: files.limit_train or None]
        self.evaluation = read_ner_file(eval_path, settings.name)
        self.labels = label_set(self.train)
        unseen = sorted({tag for sentence in self.evaluation for tag in sentence.tags} - set(self.labels))
        if unseen:
            raise UserError(
                f"{eval_path}: tag(s) {unseen} never occur in {train_path} (its tags: {self.labels}); "
                "a tagger can only predict the tags it was trained on"
            )
        self.label_ids = {name: index for index, name in enumerate(self.labels)}
        self.train_size = len(self.train)
        self._eval_features = None

    @property
    def summary(self) -> dict:
        return {"train_examples": len(self.train), "eval_examples": len(self.evaluation), "format": self.settings.name}

    def record(self, config) -> TaskRecord:
        return TaskRecord(self.settings.name, self.head, self.settings.max_seq_length, clean=False, labels=tuple(self.labels))

    def describe(self) -> str:
        types = sorted({label[2:] for label in self.labels if label != "O"})
        return f"{len(types)} entity types {types}, {len(self.train)} train / {len(self.evaluation)} eval sentences"

    def model_config(self, config):
        return config.with_token_labels(self.labels)

    def compile_args(self) -> dict:
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def train_dataset(self, tokenizer, batch_size: int, seed: int, epochs: int):
        """Global batches ``(inputs, targets, weights)``: weights 0 on ignored tokens, and scaled
        so that the compiled mean is the mean over the global batch's labelled tokens."""
        import tensorflow as tf

        from kcbert_tf.tasks.ner.token_labels import IGNORED
        from kcbert_tf.training.core import epoch_batches

        features = ner_features(tokenizer, self.train, self.settings.max_seq_length, self.label_ids)
        labelled = int((features["targets"] != IGNORED).sum())
        _LOG.info("ner: %d labelled tokens in %d training sentences", labelled, len(self.train))
        inputs = {name: tf.constant(value) for name, value in features["inputs"].items()}
        all_targets = tf.constant(features["targets"])
        order = epoch_batches(len(self.train), batch_size, epochs, seed)
        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)

        def weigh(indices):
            targets = tf.gather(all_targets, indices)
            real = tf.cast(targets != IGNORED, tf.float32)
            scale = tf.cast(tf.size(real), tf.float32) / tf.maximum(tf.reduce_sum(real), 1.0)
            batch = {name: tf.gather(value, indices) for name, value in inputs.items()}
            return batch, tf.maximum(targets, 0), real * scale

        return dataset.map(weigh).prefetch(tf.data.AUTOTUNE)

    def _predict(self, model, features, batch_size: int) -> np.ndarray:
        return np.asarray(model.predict(features["inputs"], batch_size=batch_size, verbose=0))

    def evaluate(self, model, tokenizer, batch_size: int) -> dict:
        if self._eval_features is None:
            self._eval_features = ner_features(tokenizer, self.evaluation, self.settings.max_seq_length)
        features = self._eval_features
        predicted = predicted_unit_tags(self._predict(model, features, batch_size), self.evaluation, features["spans"], self.labels)
        return entity_scores([list(sentence.tags) for sentence in self.evaluation], predicted)

    @classmethod
    def predict_file(cls, source, task: TaskRecord, input_path: str, output_path: str | None, *, batch_size: int):
        """Tag each sentence of ``input_path``; write its entities (see the module docstring)."""
        from kcbert_tf.tasks.prediction_output import write_predictions

        sentences = _sentences_to_tag(input_path, task.task)
        found = predict_entities(source, task, [sentence.text for sentence in sentences], batch_size=batch_size)
        blocks = [
            "".join([f"## {sentence.id}\t{sentence.text}\n"] + [f"{kind}\t{start}\t{end}\t{text}\n" for kind, start, end, text in entities])
            for sentence, entities in zip(sentences, found)
        ]
        write_predictions(output_path, "\n".join(blocks), f"{len(sentences):,} sentence(s), {sum(map(len, found)):,} entities")
        return found


#: The tasks whose labelled units are characters (KLUE-NER's); the others label words.
CHARACTER_UNITS = ("klue-ner",)


def _sentences_to_tag(path: str, file_format: str):
    """The sentences to tag: a file in the training format (its tags are not used), or plain text,
    one sentence a line."""
    from kcbert_tf.tasks.ner.files import NerSentence, read_ner_file
    from kcbert_tf.tasks.task_files import read_lines

    lines = read_lines(path, f"one sentence a line, or a {file_format} file")
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("## ") or "\t" in first:
        return read_ner_file(path, "klue-ner" if file_format in CHARACTER_UNITS else "word-tags")
    texts = [line.rstrip("\r") for line in lines if line.strip()]
    return [NerSentence(f"line {i + 1}", text, (), ()) for i, text in enumerate(texts)]


def predict_entities(source, task: TaskRecord, texts: list[str], *, batch_size: int = 256) -> list[list[tuple[str, int, int, str]]]:
    """For each text, its entities as ``(type, start, end, text)`` (character offsets into it),
    tagging characters (KLUE-NER) or words as the record's task did in training."""
    from kcbert_tf.tasks.length_batches import compiled_forward, eager_for_small_inputs, predict_by_length
    from kcbert_tf.tasks.ner.files import NerSentence, entity_spans

    model, tokenizer = source.load_model(), source.tokenizer()
    words = task.task not in CHARACTER_UNITS
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
        features = ner_features(tokenizer, sentences, task.max_seq_length)
        logits = predict_by_length(compiled_forward(model), features["inputs"], batch_size=batch_size, per_token=True)
    tags = predicted_unit_tags(logits, sentences, features["spans"], list(task.labels))
    return [
        [(kind, start, end, sentence.text[start:end]) for kind, start, end in entity_spans(sentence.units, sentence_tags)]
        for sentence, sentence_tags in zip(sentences, tags)
    ]
