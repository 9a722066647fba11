"""RunInference's model handler for a comment classifier SavedModel (``export-savedmodel``).

Beam's ``RunInference`` loads a model once per worker process (its shared model manager) and
calls the handler on each batch.  This handler loads the SavedModel with ``tf.saved_model.load``
and runs its ``serving_default(text)`` signature, which runs the model's own preprocessor (clean
when the model was trained so, tokenize, pack) and classifies in the graph, and gives back the
text as the model saw it: a worker needs ``tensorflow`` (with the Keras it
installs, which ``tensorflow_text`` imports) and ``tensorflow_text``, not KerasHub or this
package's model layers.  (Beam's own ``TFModelHandlerTensor`` loads through
``tf.keras.models.load_model``, which under Keras 3 reads only ``.keras`` files, and imports
``tensorflow_hub``; neither fits a SavedModel of signatures.)

Each element is a :class:`Comment`.  ``batch-predict`` hands the handler groups of comments
(:mod:`beam_jobs.batch_predict`); the handler sorts a group by the number of ids each comment
packs to and runs it ``batch_size`` comments at a time, each batch padded in the graph to its
own longest comment, as ``kcbert-tf predict`` batches.  Each result is a
:class:`Prediction`: the comment, the text as prepared for the model, the label and each class's
probability, or the score of a regressor (no label for a comment that is empty once prepared).

Example (a SavedModel written by ``kcbert-tf export-savedmodel``)::

    handler = ClassifierHandler("runs/nsmc-sm", labels=["0", "1"])
    model = handler.load_model()
    [p.label for p in handler.run_inference([Comment("a.txt", 1, "재밌다")], model)]
"""

from __future__ import annotations

import json
from typing import Iterable, NamedTuple, Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from kcbert_tf.text.model_inputs import batches_by_length

__all__ = ["Comment", "Prediction", "ClassifierHandler", "labelled_prediction", "read_export_info"]

#: Where ``export-savedmodel`` describes the export (kind, signatures, outputs) and the task
#: record it was made with (labels, max length, cleaning, texts an example).
EXPORT_INFO = ("assets", "export.json")
TASK_RECORD = ("assets", "task.json")


class Comment(NamedTuple):
    """A comment read from the input: its file and line (1-based, a header counted) and the
    text as read (what the model is given)."""

    file: str
    line: int
    text: str


class Prediction(NamedTuple):
    """A comment's prediction: ``prepared``, its text as the model saw it (what the filter
    writes); ``label`` and ``probabilities`` (one per class, in label order) for a classifier,
    ``score`` for a regressor; ``label`` is None for a comment that is empty once prepared."""

    comment: Comment
    label: str | None
    probabilities: tuple[float, ...] | None = None
    score: float | None = None
    num_ids: int = 0  # ids the comment packs to
    padded_ids: int = 0  # its share of the batch's padded width
    prepared: str = ""


def labelled_prediction(comment: Comment, labels: Sequence[str] | None, value, num_ids: int, padded_ids: int,
                        prepared: str) -> Prediction:
    """The prediction of a comment the model saw: from ``value``, a regressor's score (``labels``
    None) or each class's probability, the label the most probable class."""
    if labels is None:
        return Prediction(comment, None, score=float(value), num_ids=int(num_ids), padded_ids=padded_ids,
                          prepared=prepared)
    return Prediction(comment, labels[int(value.argmax())], tuple(map(float, value)), num_ids=int(num_ids),
                      padded_ids=padded_ids, prepared=prepared)


def _read_json(saved_model: str, parts: tuple[str, ...]) -> dict:
    path = FileSystems.join(saved_model, *parts)
    if not FileSystems.exists(path):
        return {}
    with FileSystems.open(path) as handle:
        return json.load(handle)


def read_export_info(saved_model: str) -> dict:
    """What a SavedModel says of itself (any Beam filesystem): ``assets/export.json`` (kind,
    signatures, outputs) with its task record's labels, ``max_seq_length``, ``clean`` and
    ``segments``; ``{}`` when absent."""
    info = _read_json(saved_model, EXPORT_INFO)
    record = _read_json(saved_model, TASK_RECORD)
    return {**info, **{key: record[key] for key in ("labels", "max_seq_length", "clean", "segments") if key in record}}


class ClassifierHandler(ModelHandler[Comment, Prediction, object]):
    """Loads a classifier SavedModel once per worker and labels groups of :class:`Comment`.

    ``labels`` (the export's, in id order) is None for a regressor.  ``env_vars`` are set before
    the model loads (for example ``TF_NUM_INTRAOP_THREADS`` to share a machine's cores between
    worker processes).
    """

    def __init__(self, saved_model: str, labels: Sequence[str] | None, *, batch_size: int = 64,
                 env_vars: dict[str, str] | None = None):
        super().__init__(env_vars=env_vars or {})
        self._saved_model = saved_model
        self._labels = None if labels is None else tuple(labels)
        self._batch_size = batch_size

    def load_model(self):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 - registers the in-graph tokenizer's ops

        return tf.saved_model.load(self._saved_model)  # RunInference times it (load_model_latency)

    def run_inference(self, batch: Sequence[Comment], model, inference_args=None) -> Iterable[Prediction]:
        """Predictions for ``batch`` in its order.  A batch of more than ``batch_size`` comments
        is sorted by the number of ids each packs to (the ``lengths`` signature: the tokenizer
        alone) and run ``batch_size`` at a time, each padded only to its own longest comment."""
        import tensorflow as tf

        if not len(batch):
            return []
        texts = tf.constant([comment.text for comment in batch])
        if len(batch) > self._batch_size:
            lengths = model.signatures["lengths"](text=texts)["num_ids"].numpy()
        else:  # one batch: no sorting to do
            lengths = [0] * len(batch)
        classify = model.signatures["serving_default"]
        predictions: list[Prediction | None] = [None] * len(batch)
        for chosen in batches_by_length(lengths, self._batch_size):
            outputs = classify(text=tf.gather(texts, chosen))
            prepared = [text.decode("utf-8") for text in outputs["text"].numpy().tolist()]
            mask = outputs["padding_mask"].numpy()
            num_ids, width = mask.sum(axis=1), mask.shape[1]
            values = outputs["score" if self._labels is None else "probabilities"].numpy()
            for i, text, value, n in zip(chosen, prepared, values, num_ids):
                if not text:  # nothing left for the model: no label
                    predictions[i] = Prediction(batch[i], None, prepared="")
                else:
                    predictions[i] = labelled_prediction(batch[i], self._labels, value, n, width, text)
        return predictions

    def get_num_bytes(self, batch: Sequence[Comment]) -> int:
        return sum(len(comment.text.encode("utf-8")) for comment in batch)

    def get_metrics_namespace(self) -> str:
        return "batch_predict_model"
