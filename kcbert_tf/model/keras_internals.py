"""The one place that reaches inside Keras and KerasHub, for what their public API cannot do
under ``tf.distribute``; ``tests/test_keras_internals.py`` fails loudly when an upgrade moves
what these pieces rely on (checked against Keras 3.15 and KerasHub 0.32).

- :class:`ClipAfterAllReduce` (:class:`AdamWClippedAfterAllReduce`): Keras clips gradients in ``Optimizer.apply``, on each
  replica, *before* the cross-replica sum, on a loss already scaled by ``1 / replicas``, so the
  clip means something different on every replica count.  BERT (and TF Model Garden) sum first,
  then clip by the global norm.  This AdamW does that: it clips inside
  ``_all_reduce_sum_gradients``, right after the sum, and keeps the norm it saw.
- :func:`draw_dropout_per_replica`: Keras' ``SeedGenerator`` state is one mirrored variable,
  so every replica draws the same dropout masks (keras-team/keras#20612).  The model's seed
  generators are switched to :class:`ReplicaSeedGenerator`, which folds the replica id into
  the seed (replica 0 keeps the seed it had, so one replica is unchanged).
- :func:`accumulate_gradients`: Keras' own ``gradient_accumulation_steps`` counts micro-batches
  as optimizer iterations (the schedule, checkpoints and logs would count them too) and
  applies the gradients it accumulated on each replica before any all-reduce.  This train step
  splits each replica's batch into K micro-batches in one ``tf.while_loop`` (one micro-batch's
  activations alive at a time), sums their gradients and makes one optimizer step of them, so
  every step, all-reduce and clip stays what it was with K = 1.
- :class:`DistributedDatasetFit`: KerasHub task models (``PipelineModel.fit``) accept only a
  plain ``tf.data.Dataset`` and feed anything else to ``from_tensor_slices``, which crashes on
  a distributed dataset; Keras' own ``Model.fit`` takes one.  A distributed dataset (of model
  inputs) goes straight to ``keras.Model.fit`` / ``evaluate``.
- KerasHub's BERT parts, where its public API stops: :func:`init_functional_backbone` and
  :func:`init_functional_task` build a ``BertBackbone`` / ``BertMaskedLM`` subclass from its own
  functional graph (their constructors build the stock graph);
  :func:`set_attention_probability_dropout` gives a ``TransformerEncoder`` HF's separate
  attention-probability dropout; :func:`encoder_layer_parts` and :func:`masked_lm_head_parts`
  name the sublayers whose weights the Hugging Face mapping reads and writes.

Example:

>>> optimizer = AdamWClippedAfterAllReduce(learning_rate=1e-3, clip_norm=1.0)
>>> optimizer.clip_norm, optimizer.global_clipnorm is None
(1.0, True)
"""

from __future__ import annotations

import contextlib
import functools
import types

import keras
from keras_hub.src.utils import preset_utils

__all__ = [
    "init_functional_backbone",
    "init_functional_task",
    "set_attention_probability_dropout",
    "encoder_layer_parts",
    "masked_lm_head_parts",
    "ClipAfterAllReduce",
    "AdamWClippedAfterAllReduce",
    "ReplicaSeedGenerator",
    "draw_dropout_per_replica",
    "accumulate_gradients",
    "DistributedDatasetFit",
    "is_distributed_dataset",
    "weights_to_be_loaded",
    "preprocessing_function",
    "PresetLoader",
    "read_preset_file",
    "route_presets",
]


# --- KerasHub's BERT, past its public API ------------------------------------------------------


def init_functional_backbone(backbone, *, inputs, outputs, dtype=None, **kwargs) -> None:
    """Finish a ``keras_hub.models.BertBackbone`` subclass from its own graph: run
    ``keras_hub.models.Backbone``'s constructor, skipping ``BertBackbone``'s (which would build
    the stock graph with tanh GELU and fixed dropout)."""
    import keras_hub

    keras_hub.models.Backbone.__init__(backbone, inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)


def init_functional_task(task, *, inputs, outputs, **kwargs) -> None:
    """Finish a ``keras_hub.models.BertMaskedLM`` subclass from its own graph: run
    ``keras_hub.models.MaskedLM``'s constructor, skipping ``BertMaskedLM``'s (which builds the
    stock MLM head with layer-norm epsilon 1e-5)."""
    import keras_hub

    keras_hub.models.MaskedLM.__init__(task, inputs=inputs, outputs=outputs, **kwargs)


def set_attention_probability_dropout(encoder_layer, rate: float) -> None:
    """Set a built ``keras_hub.layers.TransformerEncoder``'s dropout of the attention
    probabilities alone (KerasHub uses its one ``dropout`` for both; HF has two)."""
    attention = encoder_layer._self_attention_layer
    attention._dropout = rate
    attention._dropout_layer.rate = rate


def encoder_layer_parts(encoder_layer) -> dict:
    """The sublayers of a built ``TransformerEncoder`` that hold its weights, by role."""
    attention = encoder_layer._self_attention_layer
    return {
        "query": attention._query_dense,
        "key": attention._key_dense,
        "value": attention._value_dense,
        "attention_output": attention._output_dense,
        "attention_layer_norm": encoder_layer._self_attention_layer_norm,
        "intermediate": encoder_layer._feedforward_intermediate_dense,
        "output": encoder_layer._feedforward_output_dense,
        "output_layer_norm": encoder_layer._feedforward_layer_norm,
    }


def masked_lm_head_parts(head) -> dict:
    """The weights of a built ``keras_hub.layers.MaskedLMHead`` besides the tied embedding."""
    return {
        "transform": head._intermediate_dense,
        "transform_layer_norm": head._intermediate_layer_norm,
        "bias": head._bias,
    }


def preprocessing_function(call):
    """KerasHub's decorator for a preprocessing layer's ``call``: Python strings and lists in as
    ``tf`` tensors on the CPU, outputs out as KerasHub's own layers give them (not exported by
    KerasHub's public API)."""
    from keras_hub.src.utils.tensor_utils import preprocessing_function as wrap

    return wrap(call)


# --- KerasHub's presets ------------------------------------------------------------------------

#: KerasHub's base class of preset loaders (``from_preset`` asks one for the backbone class, the
#: backbone, the tokenizer, the preprocessor and the task).
PresetLoader = preset_utils.PresetLoader


def read_preset_file(preset: str, filename: str) -> str | None:
    """The local path of a preset's file (copied from ``gs://``, Kaggle or the Hub first), or None
    when the preset has no such file."""
    try:
        return preset_utils.get_file(preset, filename)
    except FileNotFoundError:
        return None


def route_presets(claims, loader_cls) -> None:
    """Make KerasHub's ``from_preset`` load the presets for which ``claims(preset, config)`` holds
    with ``loader_cls``.  KerasHub picks a loader from ``config.json`` alone and sends every config
    with a ``model_type`` to its transformers loader (which then asks for ``model.safetensors``),
    so that one is replaced by a subclass that hands the claimed presets to ``loader_cls`` first.
    Idempotent."""
    from keras_hub.src.utils.transformers import preset_loader as transformers_presets

    original = transformers_presets.TransformersPresetLoader
    routes = getattr(original, "routes", None)
    if routes is None:
        class RoutedTransformersPresetLoader(original):
            routes: list = []

            def __new__(cls, preset, config):
                for claim, loader in cls.routes:
                    if claim(preset, config):
                        return loader(preset, config)
                return super().__new__(cls)

        transformers_presets.TransformersPresetLoader = RoutedTransformersPresetLoader
        routes = RoutedTransformersPresetLoader.routes
    if (claims, loader_cls) not in routes:
        routes.append((claims, loader_cls))


# --- tf.distribute ---------------------------------------------------------------------------


def _tensorflow_backend() -> bool:
    return keras.backend.backend() == "tensorflow"


class ClipAfterAllReduce:
    """Optimizer mixin: clip the *summed* gradients by their global norm (``clip_norm``).

    ``class MyOptimizer(ClipAfterAllReduce, keras.optimizers.X)``.  On the TensorFlow backend
    the clip happens right after the all-reduce (under any strategy; with one replica that is
    what Keras' ``global_clipnorm`` does, but for embeddings' sparse gradients, whose norm is
    taken of the summed rows), and ``gradient_norm`` holds the global norm before clipping of
    the last step.  On other backends (one device) Keras' ``global_clipnorm`` does it.
    """

    def __init__(self, *args, clip_norm: float | None = None, **kwargs):
        if kwargs.get("global_clipnorm") is not None or kwargs.get("clipnorm") is not None:
            raise ValueError("pass clip_norm: global_clipnorm and clipnorm clip before the all-reduce")
        kwargs.pop("global_clipnorm", None)
        if not _tensorflow_backend():
            kwargs["global_clipnorm"] = clip_norm
        super().__init__(*args, **kwargs)
        self.clip_norm = clip_norm
        self.gradient_norm = None

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.gradient_norm = self.add_variable(
            shape=(), dtype="float32", aggregation="only_first_replica", name="gradient_norm"
        )

    def _all_reduce_sum_gradients(self, grads_and_vars):  # Keras' TF optimizer hook
        import tensorflow as tf

        reduced = list(super()._all_reduce_sum_gradients(grads_and_vars))
        norm = tf.linalg.global_norm([_dense_values(grad) for grad, _ in reduced if grad is not None])
        if self.gradient_norm is not None:
            self.gradient_norm.assign(norm)
        if not self.clip_norm:
            return reduced
        scale = tf.minimum(1.0, self.clip_norm / tf.maximum(norm, 1e-30))
        return [
            (None if grad is None else grad * tf.cast(scale, grad.dtype), variable)
            for grad, variable in reduced
        ]

    def get_config(self):
        config = super().get_config()
        config.pop("global_clipnorm", None)
        config["clip_norm"] = self.clip_norm
        return config


def _dense_values(gradient):
    """A gradient's entries as float32, for its norm: an embedding's ``tf.IndexedSlices`` repeats
    a row once per lookup (every token's segment id 0), so its rows are summed per index first;
    the norm of the raw values would be that of another vector (TensorFlow's own
    ``clip_by_global_norm`` makes that mistake; PyTorch's dense gradients do not)."""
    import tensorflow as tf

    if isinstance(gradient, tf.IndexedSlices):
        unique, position = tf.unique(gradient.indices)
        return tf.cast(tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(unique)[0]), tf.float32)
    return tf.cast(gradient, tf.float32)


@keras.saving.register_keras_serializable(package="kcbert_tf")
class AdamWClippedAfterAllReduce(ClipAfterAllReduce, keras.optimizers.AdamW):
    """Keras' AdamW, clipping the all-reduced gradients (:class:`ClipAfterAllReduce`).

    On the TensorFlow backend, outside TPUs (where XLA fuses the step anyway), each variable's
    update runs in TensorFlow's fused Adam kernel (``ResourceApplyAdam``: Keras' formula, epsilon
    outside the square root, in one pass over the variable, its moments and the gradient, where
    Keras' ops make a dozen), and a weight decay of 0 costs nothing (Keras would still multiply
    every variable by 0 and subtract it).
    """

    def _apply_weight_decay(self, variables):
        if isinstance(self.weight_decay, (int, float)) and self.weight_decay == 0:
            return
        super()._apply_weight_decay(variables)

    def update_step(self, gradient, variable, learning_rate):
        if not _tensorflow_backend() or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        if isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)

        def handle(value):
            return (value.value if isinstance(value, keras.Variable) else value).handle  # Keras' wraps a tf.Variable

        tf.raw_ops.ResourceApplyAdam(
            var=handle(variable), m=handle(self._momentums[index]), v=handle(self._velocities[index]),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step), beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.convert_to_tensor(gradient, dtype),
        )


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A ``SeedGenerator`` whose seeds differ per replica: replica ``r > 0`` gets the seed
    folded with ``r``; replica 0 and code outside ``tf.distribute`` get the plain seed."""

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        if not _tensorflow_backend():
            return seed
        import tensorflow as tf

        if not tf.distribute.in_cross_replica_context() and tf.distribute.has_strategy():
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
                folded = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), replica)
                return tf.where(replica > 0, tf.cast(folded, seed.dtype), seed)
        return seed


def draw_dropout_per_replica(model) -> int:
    """Make every seed generator of ``model``'s layers draw per replica; return how many.

    The generators keep their state variables (and so their place in checkpoints); only their
    class changes to :class:`ReplicaSeedGenerator`, which adds no state.
    """
    switched = 0
    for layer in model._flatten_layers(include_self=True):
        for generator in getattr(layer, "_seed_generators", []):
            if type(generator) is keras.random.SeedGenerator:
                generator.__class__ = ReplicaSeedGenerator
                switched += 1
    return switched


def accumulate_gradients(model, steps: int) -> None:
    """Make ``model``'s train step sum the gradients of ``steps`` micro-batches before its one
    optimizer step (TensorFlow backend; ``steps`` 1: Keras' own step, unchanged).

    Each replica's batch (``b`` rows) is cut into ``steps`` micro-batches of ``b / steps`` rows,
    taken in turn in a ``tf.while_loop`` (so one micro-batch's activations are alive at a time).
    Each micro-batch's loss is Keras' compiled loss over its rows; their gradients are averaged,
    which is the gradient of the whole batch's loss when the loss is a mean over rows (weighted:
    the weights normalised over the global batch keep their meaning), and applied in one
    ``apply_gradients``, all-reduced and clipped as without accumulation.  The loss and metrics
    are updated per micro-batch (their means are the whole batch's).  ``optimizer.iterations``
    counts optimizer steps, as the learning-rate schedule, checkpoints and logs do.
    """
    if steps < 1:
        raise ValueError(f"gradient accumulation steps must be >= 1, got {steps}")
    if steps == 1:
        model.__dict__.pop("train_step", None)
        return
    model.train_step = types.MethodType(functools.partial(_accumulating_train_step, steps=steps), model)


def _accumulating_train_step(self, data, *, steps: int):
    import tensorflow as tf
    from keras.src.losses import loss as loss_module

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

    def split(value):  # [b, ...] → [steps, b / steps, ...]
        if value is None:
            return None
        shape = tf.shape(value)
        return tf.reshape(value, tf.concat([[steps, shape[0] // steps], shape[1:]], axis=0))

    micro = tf.nest.map_structure(split, (x, y, sample_weight))
    variables = self.trainable_weights
    missing: list[bool] = []  # which variables get no gradient (found when the body is traced)

    def one_micro_batch(index, total):
        x_i, y_i, weight_i = tf.nest.map_structure(lambda value: None if value is None else value[index], micro)
        with tf.GradientTape() as tape:
            y_pred = self(x_i, training=True) if self._call_has_training_arg else self(x_i)
            loss = self._compute_loss(x=x_i, y=y_i, y_pred=y_pred, sample_weight=weight_i, training=True)
            rows = tf.shape(next(value for value in tf.nest.flatten(x_i) if value is not None))[0]
            self._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss), sample_weight=rows)
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        missing[:] = [gradient is None for gradient in gradients]
        self.compute_metrics(x_i, y_i, y_pred, sample_weight=weight_i)
        return index + 1, [
            sum_ if gradient is None else sum_ + tf.convert_to_tensor(gradient, sum_.dtype)
            for sum_, gradient in zip(total, gradients)
        ]

    zeros = [tf.zeros(variable.shape, variable.dtype) for variable in variables]
    _, total = tf.while_loop(
        lambda index, _: index < steps, one_micro_batch, (tf.constant(0), zeros), parallel_iterations=1
    )
    gradients = [None if none else sum_ / steps for sum_, none in zip(total, missing)]
    self.optimizer.apply_gradients(
        [(gradient, variable) for gradient, variable in zip(gradients, variables) if gradient is not None]
    )
    return self.get_metrics_result()


def is_distributed_dataset(value) -> bool:
    """Whether ``value`` came from ``strategy.experimental_distribute_dataset`` or
    ``distribute_datasets_from_function`` (a plain dataset under the default strategy is not)."""
    if value is None or not _tensorflow_backend():
        return False
    import tensorflow as tf

    return isinstance(value, tf.distribute.DistributedDataset)


class DistributedDatasetFit:
    """Mixin for KerasHub task models: ``fit`` and ``evaluate`` take distributed datasets.

    Put it first among the bases: ``class MyTask(DistributedDatasetFit, keras_hub.models.X)``.  A
    distributed dataset holds model inputs already (map the preprocessor over the data before
    distributing it): it goes straight to Keras' own ``Model.fit`` / ``evaluate``.
    """

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        if is_distributed_dataset(x) or is_distributed_dataset(validation_data):
            return keras.Model.fit(self, x, y, *args, validation_data=validation_data, **kwargs)
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if is_distributed_dataset(x):
            return keras.Model.evaluate(self, x, y, *args, **kwargs)
        return super().evaluate(x, y, *args, **kwargs)


@contextlib.contextmanager
def weights_to_be_loaded():
    """Build a model whose every weight is loaded right after: its variables start as zeros
    instead of their initializers' random draws (1.9 s of building kcbert-base on this CPU).
    Seed generators' states keep their own initial values (they are not weights).  On the
    TensorFlow backend only (elsewhere nothing changes)."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow.core import Variable

    draw = Variable._initialize_with_initializer

    def zeros_for_weights(self, initializer):
        if not isinstance(initializer, keras.initializers.Initializer):
            return draw(self, initializer)
        self._initialize(lambda: tf.zeros(self._shape, dtype=self._dtype))

    Variable._initialize_with_initializer = zeros_for_weights
    try:
        yield
    finally:
        Variable._initialize_with_initializer = draw
