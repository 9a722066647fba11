"""RunInference's model handler for a LiteRT comment classifier (``export-litert``): Beam workers
with neither TensorFlow nor its memory.

The LiteRT counterpart of :class:`~beam_jobs.classifier_handler.ClassifierHandler`, with the same
elements (:class:`~beam_jobs.classifier_handler.Comment` in,
:class:`~beam_jobs.classifier_handler.Prediction` out) and batching: a group is prepared in Python
(KcBERT's ``clean()`` when the model was trained so), packed by the serving tokenizer
(transformers' ids), sorted by length and run ``batch_size`` comments at a time, each batch cut to
its own longest comment, by LiteRT with XNNPACK.  A worker needs ``pip install
'kcbert-tf[litert]'`` (``ai-edge-litert``, ``tokenizers``).  The model file is read through Beam's
file systems (``gs://`` too) once per worker process; ``TF_NUM_INTRAOP_THREADS``, which
``batch-predict`` sets for local worker processes, is the threads LiteRT computes on.

Example (a LiteRT directory written by ``kcbert-tf export-litert``)::

    handler = LiteRtClassifierHandler("runs/nsmc-int8", labels=["0", "1"])
    model = handler.load_model()
    [p.label for p in handler.run_inference([Comment("a.txt", 1, "재밌다")], model)]
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from beam_jobs.classifier_handler import Comment, Prediction, labelled_prediction
from kcbert_tf.text.model_inputs import batches_by_length

__all__ = ["LiteRtClassifierHandler", "is_litert_model"]


@dataclasses.dataclass(frozen=True)
class LoadedLiteRt:
    """A worker's model: the runner, the serving tokenizer and whether texts are cleaned (a class,
    not a tuple: Beam's shared model manager keeps a weak reference to it)."""

    runner: object  # kcbert_tf.litert.runner.LiteRtRunner
    tokenizer: object  # kcbert_tf.text.serving_tokenizer.ServingTokenizer
    clean: bool


class LiteRtClassifierHandler(ModelHandler[Comment, Prediction, LoadedLiteRt]):
    """Loads a LiteRT classifier once per worker and labels groups of :class:`Comment`;
    ``labels`` None for a regressor."""

    def __init__(self, litert_dir: str, labels: Sequence[str] | None, *, batch_size: int = 64,
                 env_vars: dict[str, str] | None = None):
        super().__init__(env_vars=env_vars or {})
        self._litert_dir = litert_dir
        self._labels = None if labels is None else tuple(labels)
        self._batch_size = batch_size

    def load_model(self) -> LoadedLiteRt:
        # Imported here: a worker serving a SavedModel loads none of the model layers.
        from kcbert_tf.litert.litert_dir import LiteRtDir

        litert = LiteRtDir.read(self._litert_dir)
        record = litert.use()
        threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 0) or None
        return LoadedLiteRt(litert.runner(threads=threads), litert.tokenizer(record), record.clean)

    def run_inference(self, batch: Sequence[Comment], model: LoadedLiteRt, inference_args=None) -> Iterable[Prediction]:
        """Predictions for ``batch`` in its order (see the module)."""
        from kcbert_tf.litert.predict import prepare_texts
        from kcbert_tf.tasks.sentence.prediction import softmax

        prepared = prepare_texts((comment.text for comment in batch), model.clean)
        predictions = [Prediction(comment, None, prepared="") for comment in batch]
        chosen = [i for i, text in enumerate(prepared) if text]
        if not chosen:
            return predictions
        inputs = model.tokenizer.pack([prepared[i] for i in chosen])
        lengths = inputs["padding_mask"].sum(axis=1)
        for rows in batches_by_length(lengths, self._batch_size):
            width = int(lengths[rows].max())
            logits = model.runner({name: value[rows, :width] for name, value in inputs.items()})
            values = logits[:, 0] if self._labels is None else softmax(logits)
            for row, value in zip(rows, values):
                i = chosen[row]
                predictions[i] = labelled_prediction(batch[i], self._labels, value, lengths[row], width, prepared[i])
        return predictions

    def get_num_bytes(self, batch: Sequence[Comment]) -> int:
        return sum(len(comment.text.encode("utf-8")) for comment in batch)

    def get_metrics_namespace(self) -> str:
        return "batch_predict_model"


def is_litert_model(path: str) -> bool:
    """Whether ``path`` (any Beam file system) is a LiteRT directory."""
    from kcbert_tf.litert.litert_dir import LITERT_MODEL_FILE

    return FileSystems.exists(FileSystems.join(path, LITERT_MODEL_FILE))
