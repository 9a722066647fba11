"""Model directories are KerasHub presets: building, loading and ``from_preset`` for KcBERT models.

A model directory (:mod:`kcbert_tf.model.model_dir`: ``config.json`` in transformers' form,
``vocab.txt``, ``model.weights.h5``, ``task.json``) is the preset format of kcbert-tf, written by
``pretrain``, ``finetune``, ``import-hf`` and ``save_to_preset``.  Importing this module (which
``import kcbert_tf`` does as soon as KerasHub is imported) registers :class:`KcBertPresetLoader`
with KerasHub, so that its own constructors load one::

    keras_hub.models.TextClassifier.from_preset("runs/nsmc")      # the classifier, preprocessor too
    keras_hub.models.MaskedLM.from_preset("runs/kcbert-base")
    keras_hub.models.Backbone.from_preset("runs/kcbert-base")
    keras_hub.models.TextClassifier.from_preset("runs/kcbert-base", num_classes=3)  # a new head
    kcbert_tf.KcBertTokenClassifier.from_preset("runs/ner")

Without a ``task.json`` (a pretrained masked LM) the preprocessor takes the model's full length
(KcBERT: 300 ids) and :meth:`~kcbert_tf.model.task_record.TaskRecord.default` 's cleaning.
Keyword arguments go where KerasHub sends them (``num_classes`` to a new head, ``dtype`` to the
backbone; ``sequence_length`` to ``Preprocessor.from_preset``).

Example:

>>> import tempfile
>>> import keras_hub
>>> from kcbert_tf.model.config import BertConfig
>>> from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor
>>> config = BertConfig(vocab_size=9, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=16, max_position_embeddings=16).with_labels(["neg", "pos"])
>>> tokenizer = KcBertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아", "싫", "##어"])
>>> model = build_model(config, preprocessor=KcBertTextClassifierPreprocessor(tokenizer, sequence_length=16))
>>> with tempfile.TemporaryDirectory() as directory:
...     model.save_to_preset(directory)
...     loaded = keras_hub.models.TextClassifier.from_preset(directory)
>>> type(loaded).__name__, loaded.labels, loaded.preprocessor.sequence_length
('KcBertTextClassifier', ['neg', 'pos'], 16)
"""

from __future__ import annotations

import inspect
import os
import tempfile

from keras_hub.models import Preprocessor

from kcbert_tf.errors import ConfigError
from kcbert_tf.model.backbone import KcBertBackbone, build_backbone
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.keras_internals import PresetLoader, read_preset_file, route_presets, weights_to_be_loaded
from kcbert_tf.model.masked_lm import KcBertMaskedLM
from kcbert_tf.model.model_dir import WEIGHTS_FILE, ModelDir
from kcbert_tf.model.question_answerer import KcBertQuestionAnswerer
from kcbert_tf.model.question_answerer_preprocessor import KcBertQuestionAnswererPreprocessor
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.model.text_classifier import KcBertTextClassifier
from kcbert_tf.model.token_classifier import KcBertTokenClassifier
from kcbert_tf.model.tokenizer import KcBertTokenizer

__all__ = ["TASK_MODELS", "build_model", "build_preprocessor", "load_model", "KcBertPresetLoader"]

#: head → its task model class (every head of :mod:`kcbert_tf.model.heads`).
TASK_MODELS = {cls.HEAD: cls for cls in (KcBertMaskedLM, KcBertTextClassifier, KcBertTokenClassifier,
                                          KcBertQuestionAnswerer)}


def build_model(config: BertConfig, dtype=None, preprocessor=None, record: TaskRecord | None = None):
    """A freshly initialized model of the config's head: masked LM, text classifier, token
    classifier or question answerer (``dtype``: a Keras dtype policy, float32 by default)."""
    return TASK_MODELS[config.head].for_config(config, dtype, preprocessor=preprocessor, record=record)


def build_preprocessor(preprocessor_cls, vocab: list[str], record: TaskRecord, **overrides) -> Preprocessor:
    """The preprocessor of ``preprocessor_cls`` for a model used as ``record`` says (its length,
    its cleaning, question answering's windows); ``overrides`` win."""
    settings = {"sequence_length": record.max_seq_length}
    if "clean" in inspect.signature(preprocessor_cls).parameters:
        settings["clean"] = record.clean
    if issubclass(preprocessor_cls, KcBertQuestionAnswererPreprocessor):
        settings.update({name: record.options[name] for name in ("doc_stride", "max_query_length", "max_answer_length")
                         if name in record.options})
    return preprocessor_cls(KcBertTokenizer(vocabulary=vocab), **{**settings, **overrides})


def _load_weights(source: ModelDir, model) -> None:
    """The directory's weights into ``model`` (built for its config); a clear error when they do
    not fit."""
    import h5py
    import tensorflow as tf

    weights = source.weights_path
    with tempfile.TemporaryDirectory() as local:
        if "://" in weights:  # h5py reads local files only.
            tf.io.gfile.copy(weights, os.path.join(local, WEIGHTS_FILE))
            weights = os.path.join(local, WEIGHTS_FILE)
        try:
            stored = 0

            def count(name, item):
                nonlocal stored
                stored += isinstance(item, h5py.Dataset) and name.startswith("layers/")

            with h5py.File(weights, "r") as handle:
                handle.visititems(count)
            if stored != len(model.weights):  # Keras would skip extra layers without a word.
                raise ValueError(f"it holds {stored} arrays, the model has {len(model.weights)}")
            model.load_weights(weights)
        except (OSError, ValueError) as error:  # unreadable, or another model's shapes
            detail = " ".join([line.strip() for line in str(error).splitlines() if line.strip()][:2])
            raise ConfigError(
                f"{source.weights_path}: cannot load these weights into the model of {source.config_path} "
                f"({detail}): the weights and the config are from different models; give the config the "
                "weights were trained with"
            ) from None


def load_model(model_dir: str | os.PathLike | ModelDir, *, record: TaskRecord | None = None, dtype=None,
               preprocessor: bool = True):
    """The task model of a model directory with its weights and, unless ``preprocessor`` is
    False, its preprocessor as ``record`` says (default: the directory's own record,
    :meth:`~kcbert_tf.model.model_dir.ModelDir.use`)."""
    source = model_dir if isinstance(model_dir, ModelDir) else ModelDir.read(model_dir)
    config = source.config
    built = None
    if preprocessor:
        built = build_preprocessor(TASK_MODELS[config.head].preprocessor_cls, source.vocab, record or source.use())
    with weights_to_be_loaded():  # every weight is loaded below (their count is checked)
        model = build_model(config, dtype, preprocessor=built, record=source.task)
    _load_weights(source, model)
    return model


def is_model_directory(preset: str, config: dict) -> bool:
    """Whether a preset whose ``config.json`` is ``config`` is a kcbert-tf model directory (a
    BERT config beside Keras weights) rather than a transformers checkpoint."""
    return config.get("model_type") == "bert" and read_preset_file(preset, WEIGHTS_FILE) is not None


class KcBertPresetLoader(PresetLoader):
    """KerasHub's loader for a kcbert-tf model directory (``from_preset`` finds it by
    :func:`is_model_directory`)."""

    def __init__(self, preset, config):
        super().__init__(preset, config)
        self.source = ModelDir.read(preset)

    def check_backbone_class(self):
        return KcBertBackbone

    def _model(self, dtype=None):
        return load_model(self.source, dtype=dtype, preprocessor=False)

    def load_backbone(self, cls, load_weights, **kwargs):
        dtype = kwargs.pop("dtype", None)
        backbone = self._model(dtype).backbone if load_weights else build_backbone(self.source.config, dtype)
        if kwargs:
            raise ValueError(f"{self.preset}: a backbone takes dtype= only from a model directory, got {sorted(kwargs)}")
        return backbone

    def load_tokenizer(self, cls, config_file=None, **kwargs):
        return cls(vocabulary=self.source.vocab, **kwargs)

    def load_preprocessor(self, cls, config_file=None, **kwargs):
        head = next(task.HEAD for task in TASK_MODELS.values() if issubclass(cls, task.preprocessor_cls))
        if head == self.source.config.head:
            record = self.source.use()
        else:
            record = TaskRecord.default(head, self.source.config.max_position_embeddings)
        return build_preprocessor(cls, self.source.vocab, record, **kwargs)

    def load_task(self, cls, load_weights, load_task_weights, **kwargs):
        dtype = kwargs.pop("dtype", None)
        preprocessor = kwargs.pop("preprocessor", None)
        if cls.HEAD == self.source.config.head and load_task_weights and not kwargs:
            model = load_model(self.source, dtype=dtype, preprocessor=preprocessor is None) if load_weights else (
                build_model(self.source.config, dtype, record=self.source.task))
            if preprocessor is not None or not load_weights:
                model.preprocessor = preprocessor or self.load_preprocessor(cls.preprocessor_cls)
            return model
        # A new head on this directory's encoder (KerasHub: ``num_classes`` given, or another task),
        # its dropout the config's, as transformers' classifier_dropout defaults to it.
        backbone = self.load_backbone(cls.backbone_cls, load_weights, dtype=dtype)
        if preprocessor is None:
            preprocessor = self.load_preprocessor(cls.preprocessor_cls)
        if "dropout" in inspect.signature(cls).parameters:
            kwargs.setdefault("dropout", self.source.config.hidden_dropout_prob)
        try:
            return cls(backbone=backbone, preprocessor=preprocessor, **kwargs)
        except TypeError as error:
            raise ValueError(
                f"{self.preset} holds a {self.source.config.architecture}: a new {cls.__name__} head on its "
                f"encoder needs its settings ({error}), e.g. num_classes=2"
            ) from None


route_presets(is_model_directory, KcBertPresetLoader)
