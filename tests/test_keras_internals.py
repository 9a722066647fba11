"""kcbert_tf.model.keras_internals: what it relies on inside Keras and KerasHub is still there.

The behaviour itself is proved on replicas in tests/test_replicas.py (clip after the all-reduce,
per-replica dropout, fit on distributed datasets, each against Keras' own behaviour); these
tests fail loudly, naming the piece, when an upgrade moves a hook the module uses.
"""

from __future__ import annotations

import inspect
import json
import re

import keras
import numpy as np
import pytest

from conftest import REPO
from kcbert_tf.model.keras_internals import (
    AdamWClippedAfterAllReduce,
    ReplicaSeedGenerator,
    draw_dropout_per_replica,
    is_distributed_dataset,
)
from kcbert_tf.model.presets import load_model


def tiny_model():
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model

    return build_model(BertConfig.from_dict(json.loads((REPO / "configs" / "kcbert-tiny.json").read_text())))


def test_keras_tf_optimizer_still_all_reduces_in_the_hook_we_override():
    from keras.src.backend.tensorflow.optimizer import TFOptimizer

    assert hasattr(TFOptimizer, "_all_reduce_sum_gradients"), "Keras moved the all-reduce: revisit ClipAfterAllReduce"
    assert "_all_reduce_sum_gradients" in inspect.getsource(TFOptimizer._backend_update_step)
    assert issubclass(AdamWClippedAfterAllReduce, TFOptimizer)


def test_every_dropout_of_the_model_draws_per_replica():
    """A stock KerasHub model's dropouts are switched; a KcBERT task model's already are, as built."""
    import keras_hub

    stock = keras_hub.models.BertMaskedLM(tiny_model().backbone, preprocessor=None)
    dropouts = [layer for layer in stock._flatten_layers() if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) >= 5  # embeddings, attention probabilities, two per layer
    for layer in dropouts:
        layer.seed_generator.__class__ = keras.random.SeedGenerator  # as Keras builds them
    switched = draw_dropout_per_replica(stock)
    assert switched >= len(dropouts)
    assert all(isinstance(layer.seed_generator, ReplicaSeedGenerator) for layer in dropouts)
    assert draw_dropout_per_replica(stock) == 0  # idempotent
    ours = tiny_model()
    assert all(isinstance(layer.seed_generator, ReplicaSeedGenerator)
               for layer in ours._flatten_layers() if isinstance(layer, keras.layers.Dropout))


def test_outside_replicas_the_seeds_and_checkpoint_layout_are_unchanged():
    """One replica trains as before: the same dropout masks, the same variables to checkpoint."""
    x = {
        "token_ids": np.tile(np.arange(5, 21, dtype=np.int32), (2, 1)),
        "segment_ids": np.zeros((2, 16), np.int32),
        "padding_mask": np.ones((2, 16), np.int32),
        "mask_positions": np.tile(np.array([1, 2], np.int32), (2, 1)),
    }
    outputs, paths = [], []
    for prepared in (False, True):
        keras.utils.set_random_seed(1)
        model = tiny_model()
        if prepared:
            draw_dropout_per_replica(model)
        outputs.append(np.asarray(model(x, training=True)))
        # Names without Keras' global counters (they grow with every model built).
        paths.append([(re.sub(r"_\d+", "", v.path), tuple(v.shape)) for v in model.variables])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert paths[0] == paths[1]


def test_the_optimizer_config_round_trips_and_refuses_keras_own_clipping():
    optimizer = AdamWClippedAfterAllReduce(learning_rate=1e-3, weight_decay=0.01, clip_norm=1.0)
    restored = AdamWClippedAfterAllReduce.from_config(optimizer.get_config())
    assert restored.clip_norm == 1.0 and restored.global_clipnorm is None
    with pytest.raises(ValueError, match="pass clip_norm"):
        AdamWClippedAfterAllReduce(learning_rate=1e-3, global_clipnorm=1.0)


def test_plain_datasets_keep_keras_hub_s_own_fit():
    import tensorflow as tf

    assert not is_distributed_dataset(tf.data.Dataset.range(3))
    assert not is_distributed_dataset(None)
    assert is_distributed_dataset(tf.distribute.MirroredStrategy(["/cpu:0"]).experimental_distribute_dataset(tf.data.Dataset.range(4).batch(2)))


def test_keras_hub_bert_parts_are_where_the_model_and_the_converters_reach():
    """The KerasHub sublayers kcbert_tf reaches by name are still there, with the weights the
    Hugging Face mapping expects, and the constructors it calls still build the graph."""
    from kcbert_tf.model.keras_internals import encoder_layer_parts, masked_lm_head_parts

    model = tiny_model()
    config = json.loads((REPO / "configs" / "kcbert-tiny.json").read_text())
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    layer = model.backbone.transformer_layers[0]
    parts = encoder_layer_parts(layer)
    for name in ("query", "key", "value"):
        assert tuple(parts[name].kernel.shape) == (hidden, config["num_attention_heads"], hidden // config["num_attention_heads"])
    assert tuple(parts["intermediate"].kernel.shape) == (hidden, intermediate)
    assert tuple(parts["output"].kernel.shape) == (intermediate, hidden)
    assert {"gamma", "beta"} <= {v.path.rsplit("/", 1)[-1] for v in parts["output_layer_norm"].weights}
    head = masked_lm_head_parts(model.masked_lm_head)
    assert tuple(head["bias"].shape) == (config["vocab_size"],)
    assert tuple(head["transform"].kernel.shape) == (hidden, hidden)
    # HF's separate attention-probability dropout reached the attention layer.
    assert layer._self_attention_layer._dropout_layer.rate == config["attention_probs_dropout_prob"]


def test_a_model_built_for_loading_starts_at_zeros_and_loads_every_weight(tmp_path):
    """weights_to_be_loaded: weights start as zeros (no random draws), seed states keep their own
    values, nothing leaks out of the block, and a saved model loads back bit for bit."""
    from kcbert_tf.model.keras_internals import weights_to_be_loaded
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.vocab import SPECIAL_TOKENS

    keras.utils.set_random_seed(7)
    saved = tiny_model()
    with weights_to_be_loaded():
        zeros = tiny_model()
    assert all(not np.any(v.numpy()) for v in zeros.weights)
    seeds = [g.state.numpy() for layer in zeros._flatten_layers() for g in getattr(layer, "_seed_generators", [])]
    assert seeds and all(np.any(state) for state in seeds)
    assert any(np.any(v.numpy()) for v in tiny_model().weights)  # outside the block: drawn again
    vocab = list(SPECIAL_TOKENS) + [f"t{i}" for i in range(saved.backbone.vocabulary_size - len(SPECIAL_TOKENS))]
    config = json.loads((REPO / "configs" / "kcbert-tiny.json").read_text())
    from kcbert_tf.model.config import BertConfig

    written = ModelDir.write(str(tmp_path), BertConfig.from_dict(config), vocab, saved)
    for a, b in zip(saved.weights, load_model(written).weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_keras_train_step_still_has_the_pieces_the_accumulating_step_uses():
    """`accumulate_gradients` replaces Keras' TensorFlow train step with one that loops over
    micro-batches; it calls the same private pieces Keras' own step calls."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer
    from keras.src.losses import loss as loss_module

    source = inspect.getsource(TensorFlowTrainer.train_step)
    for piece in ("self._compute_loss(", "self._loss_tracker.update_state(", "unscale_loss_for_distribution(",
                  "self.optimizer.scale_loss(", "self._call_has_training_arg", "self.compute_metrics("):
        assert piece in source, f"Keras' train_step no longer uses {piece}: revisit accumulate_gradients"
    assert callable(loss_module.unscale_loss_for_distribution)
