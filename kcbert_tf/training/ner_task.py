"""Named-entity recognition as a fine-tuning task: a BIO label per token (``--task klue-ner``,
``--task word-tags``).

The files are read by :mod:`kcbert_tf.text.ner_files` (texts as written: the tags belong to the
characters, so nothing is cleaned); the labels are ``O`` and ``B-``/``I-`` of every entity type of
the training file, and an eval tag training never saw is an error.  Sentences are tokenized with
character offsets (``KcBertTokenizer.encode_with_offsets``, transformers' offsets), truncated to
``max_seq_length - 2`` tokens, packed as ``[CLS] tokens [SEP]`` and padded; the first token of each
labelled unit (word, or character for KLUE-NER) carries its label, the rest are ignored
(:mod:`kcbert_tf.text.token_labels`).  The loss is the cross-entropy over the labelled tokens,
averaged over the global batch's labelled tokens whatever the replica count (transformers
averages over the batch's labelled tokens too).

Each epoch the eval file's predictions are mapped back to the units and scored at the entity
level with seqeval (precision, recall, F1 per type and micro-averaged over all), against the
file's own tags: an entity cut off by truncation counts as missed.
"""

from __future__ import annotations

import logging

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.text.token_labels import ner_features, predicted_unit_tags

__all__ = ["NerTask", "entity_scores"]

_LOG = logging.getLogger(__name__)


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1 (seqeval, conlleval's rules), micro over all types,
    and per type."""
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    micro = report["micro avg"]
    per_type = {
        name: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]), "support": int(v["support"])}
        for name, v in report.items() if not name.endswith(" avg")
    }
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"]), "per_type": per_type}


class NerTask:
    """A token-classification task: read, batched, scored."""

    clean = False  # the tags belong to the characters as written

    def __init__(self, settings, train_path: str, eval_path: str, *, limit_train: int | None = None):
        from kcbert_tf.text.ner_files import label_set, read_ner_file

        self.settings = settings
        self.train = read_ner_file(train_path, settings.name)[: limit_train or None]
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
        self.record = {"train_examples": len(self.train), "eval_examples": len(self.evaluation), "format": settings.name}
        self._eval_features = None

    def prepare(self, tokenizer) -> None:
        """Nothing to do before training: batches are built as they are read."""

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

        from kcbert_tf.text.token_labels import IGNORED
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

    def evaluation_outputs(self):
        """Nothing to keep of an evaluation beyond its scores."""
        return None

    def write_outputs(self, directory, outputs) -> None:
        """Nothing beyond the model and ``metrics.json``."""
