"""kcbert-tf: KcBERT (a Korean comment-domain BERT) as a TensorFlow/Keras library and system.

The Python API is this package's names, each imported on first use (``import kcbert_tf`` itself
stays light: Beam workers and the command line import it too):

- the Keras models, KerasHub style (a task model carries its preprocessor): ``KcBertBackbone``,
  ``KcBertTokenizer``, ``KcBertTextClassifier`` and ``KcBertTextClassifierPreprocessor``,
  ``KcBertMaskedLM`` and ``KcBertMaskedLMPreprocessor``, ``KcBertTokenClassifier`` and
  ``KcBertTokenClassifierPreprocessor``, ``KcBertQuestionAnswerer`` and
  ``KcBertQuestionAnswererPreprocessor``.  Once KerasHub is imported, a model directory loads
  with KerasHub's own ``from_preset`` (:mod:`kcbert_tf.model.presets`)::

      import keras_hub, kcbert_tf
      classifier = keras_hub.models.TextClassifier.from_preset("runs/nsmc")
      classifier.predict(["배우 연기 최고"])

- the workflows, each what a ``kcbert-tf`` command runs: :func:`preprocess`,
  :func:`train_tokenizer`, :func:`make_pretraining_data`, :func:`pretrain`, :func:`finetune`,
  :func:`score_checkpoints`, :func:`predict_file`, :func:`fill_mask`, :func:`export_hf`, :func:`import_hf`,
  :func:`export_saved_model`, :func:`export_litert`, :func:`batch_predict`; the Beam jobs as ``PTransform`` s:
  ``CleanDedup``, ``PretrainingData``, ``BatchPredict``;
- tasks of your own: ``FineTuningTask``, ``TrainingSettings``, ``TrainingExamples``,
  ``TaskPreset``, ``flag``, ``register_task`` (or the ``kcbert_tf.tasks`` entry-point group);
- :func:`clean`, KcBERT's comment cleaner.

The packages, in the order of the data flow: :mod:`kcbert_tf.text` (cleaning, formats, the vocab,
the in-graph tokenizer, packing, masking), :mod:`kcbert_tf.model` (the config, the Keras models and
preprocessors, the model directory), :mod:`kcbert_tf.conversion` (Hugging Face, SavedModel), :mod:`kcbert_tf.litert` (int8/fp32 LiteRT,
served without TensorFlow),
:mod:`kcbert_tf.training` (strategies, the input pipeline, the fit core, pretraining, vocab
training), :mod:`kcbert_tf.tasks` (the fine-tuning tasks and loop), :mod:`kcbert_tf.inference`
(predict, fill-mask), and :mod:`kcbert_tf.cli`, the command layer; the Beam jobs are ``beam_jobs``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def _keras_models() -> dict:
    """The Keras classes (their import registers them with Keras and KerasHub)."""
    from kcbert_tf.model.backbone import KcBertBackbone
    from kcbert_tf.model.masked_lm import KcBertMaskedLM
    from kcbert_tf.model.masked_lm_preprocessor import KcBertMaskedLMPreprocessor
    from kcbert_tf.model.presets import load_model
    from kcbert_tf.model.question_answerer import KcBertQuestionAnswerer
    from kcbert_tf.model.question_answerer_preprocessor import KcBertQuestionAnswererPreprocessor
    from kcbert_tf.model.text_classifier import KcBertTextClassifier
    from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor
    from kcbert_tf.model.token_classifier import KcBertTokenClassifier
    from kcbert_tf.model.token_classifier_preprocessor import KcBertTokenClassifierPreprocessor
    from kcbert_tf.model.tokenizer import KcBertTokenizer

    return {
        "KcBertBackbone": KcBertBackbone, "KcBertTokenizer": KcBertTokenizer, "load_model": load_model,
        "KcBertTextClassifier": KcBertTextClassifier, "KcBertTextClassifierPreprocessor": KcBertTextClassifierPreprocessor,
        "KcBertMaskedLM": KcBertMaskedLM, "KcBertMaskedLMPreprocessor": KcBertMaskedLMPreprocessor,
        "KcBertTokenClassifier": KcBertTokenClassifier,
        "KcBertTokenClassifierPreprocessor": KcBertTokenClassifierPreprocessor,
        "KcBertQuestionAnswerer": KcBertQuestionAnswerer,
        "KcBertQuestionAnswererPreprocessor": KcBertQuestionAnswererPreprocessor,
    }


def _module_of(name: str):
    """The module that defines the public name ``name`` (not a Keras class), imported now."""
    if name in ("finetune", "FineTuned"):
        from kcbert_tf.tasks import finetuning as module
    elif name in ("FineTuningTask", "TrainingSettings", "TaskFiles", "Evaluation", "TaskPreset", "flag"):
        from kcbert_tf.tasks import contract as module
    elif name == "TrainingExamples":
        from kcbert_tf.training import length_buckets as module
    elif name in ("register_task", "task_names"):
        from kcbert_tf.tasks import registry as module
    elif name in ("export_hf", "import_hf"):
        from kcbert_tf.conversion import hugging_face as module
    elif name == "export_saved_model":
        from kcbert_tf.conversion import saved_model as module
    elif name == "export_litert":
        from kcbert_tf.litert import export as module
    elif name == "pretrain":
        from kcbert_tf.training import pretraining as module
    elif name == "score_checkpoints":
        from kcbert_tf.training import checkpoint_scoring as module
    elif name == "train_tokenizer":
        from kcbert_tf.training import vocab_training as module
    elif name == "predict_file":
        from kcbert_tf.inference import predict as module
    elif name == "fill_mask":
        from kcbert_tf.inference import fill_mask as module
    elif name == "clean":
        from kcbert_tf.text import cleaning as module
    elif name in ("preprocess", "CleanDedup"):
        from beam_jobs import clean_dedup as module
    elif name in ("make_pretraining_data", "PretrainingData"):
        from beam_jobs import pretraining_data as module
    elif name in ("batch_predict", "BatchPredict"):
        from beam_jobs import batch_predict as module
    else:
        raise AttributeError(f"module 'kcbert_tf' has no attribute {name!r}")
    return module


#: The public names besides the Keras classes, each defined in the module :func:`_module_of` gives.
_WORKFLOWS = ("finetune", "FineTuned", "FineTuningTask", "TrainingSettings", "TaskFiles", "Evaluation", "TaskPreset",
              "TrainingExamples", "flag", "register_task", "task_names", "export_hf", "import_hf", "export_saved_model", "export_litert", "pretrain",
              "score_checkpoints",
              "train_tokenizer", "predict_file", "fill_mask", "clean", "preprocess", "CleanDedup",
              "make_pretraining_data", "PretrainingData", "batch_predict", "BatchPredict")
_KERAS = ("KcBertBackbone", "KcBertTokenizer", "KcBertTextClassifier", "KcBertTextClassifierPreprocessor",
          "KcBertMaskedLM", "KcBertMaskedLMPreprocessor", "KcBertTokenClassifier", "KcBertTokenClassifierPreprocessor",
          "KcBertQuestionAnswerer", "KcBertQuestionAnswererPreprocessor", "load_model")
_API = (*_KERAS, *_WORKFLOWS)

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    value = _keras_models()[name] if name in _KERAS else getattr(_module_of(name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


# --- KerasHub's from_preset ---------------------------------------------------------------------


def _register_with_keras_hub() -> None:
    """Register the KcBERT classes and the model-directory loader with KerasHub, unless KerasHub
    was imported from inside one of this package's own modules (whose import registers them)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("kcbert_tf.") and getattr(getattr(module, "__spec__", None), "_initializing", False):
            return
    _keras_models()


class _AfterKerasHub(importlib.abc.MetaPathFinder):
    """Calls :func:`_register_with_keras_hub` once ``keras_hub`` has been imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras_hub":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_and_register(module):
                exec_module(module)
                _register_with_keras_hub()

            spec.loader.exec_module = exec_and_register
        return spec


if "keras_hub" in sys.modules:
    _register_with_keras_hub()
elif importlib.util.find_spec("keras_hub") is not None:
    sys.meta_path.insert(0, _AfterKerasHub())
