"""Multi-replica checks, run in a fresh process (the CPU is split into logical devices before
TensorFlow sets up its devices, which a pytest process has long done).

    python tests/replica_checks.py CHECK REPLICAS [ARG]  →  one JSON line on stdout
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kcbert_tf.training.strategy import resolve_strategy  # noqa: E402


def clip(info) -> dict:
    """SGD, learning rate 1, clip 1, one step on a gradient of norm 200 (the issue's example):
    how far the kernel moves with Keras' own ``global_clipnorm`` and with ours."""
    import keras

    from kcbert_tf.model.keras_internals import ClipAfterAllReduce

    class SGDClippedAfterAllReduce(ClipAfterAllReduce, keras.optimizers.SGD):
        pass

    x = np.full((8, 1), 10.0, np.float32)
    y = np.full((8, 1), -10.0, np.float32)  # d/dk mean((k x - y)^2) at k=0: -2 * 10 * 10 = -200
    moved = {}
    for name, make in {
        "keras_global_clipnorm": lambda: keras.optimizers.SGD(1.0, global_clipnorm=1.0),
        "clip_after_all_reduce": lambda: SGDClippedAfterAllReduce(learning_rate=1.0, clip_norm=1.0),
    }.items():
        with info.strategy.scope():
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
            model.compile(optimizer=make(), loss="mse")
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        model.fit(info.strategy.experimental_distribute_dataset(dataset), epochs=1, verbose=0)
        moved[name] = float(model.layers[0].kernel.numpy()[0, 0])
        norm = getattr(model.optimizer, "gradient_norm", None)
        if norm is not None:
            moved["gradient_norm"] = float(norm.numpy())
    return moved


def dropout(info) -> dict:
    """The real masked LM in training mode on the same input on every replica: do the replicas'
    outputs differ (their own dropout masks)?  With Keras' own seed generators (as a stock model
    has them), and as the KcBERT masked LM is built (each replica its own)."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model

    config = BertConfig.from_dict(json.load(open(os.path.join(os.path.dirname(__file__), "..", "configs",
                                                          "kcbert-tiny.json"))))
    batch = {
        "token_ids": np.tile(np.arange(5, 21, dtype=np.int32), (2, 1)),
        "segment_ids": np.zeros((2, 16), np.int32),
        "padding_mask": np.ones((2, 16), np.int32),
        "mask_positions": np.tile(np.array([1, 2, 3], np.int32), (2, 1)),
    }
    dataset = tf.data.Dataset.from_tensors(batch).repeat(info.num_replicas).unbatch().batch(2 * info.num_replicas)
    result = {}
    for prepared in (False, True):
        keras.utils.set_random_seed(0)
        with info.strategy.scope():
            model = build_model(config)
            if not prepared:  # back to Keras' own generators: one seed for every replica
                for layer in model._flatten_layers():
                    for generator in getattr(layer, "_seed_generators", []):
                        generator.__class__ = keras.random.SeedGenerator
        step = tf.function(lambda x: model(x, training=True))
        inputs = next(iter(info.strategy.experimental_distribute_dataset(dataset)))
        outputs = [np.asarray(o) for o in info.strategy.experimental_local_results(info.strategy.run(step, args=(inputs,)))]
        result["per_replica" if prepared else "stock"] = {
            "differ": any(not np.array_equal(outputs[0], other) for other in outputs[1:]),
            "replica_0": outputs[0].ravel()[:8].tolist(),
        }
    return result


def evaluation(info, record_dir: str) -> dict:
    """An eval dataset of ``steps=4`` global batches of 12, distributed: how many global steps
    does it give, and which rows, in order?"""
    from kcbert_tf.training import input_pipeline as data

    dataset = info.strategy.distribute_datasets_from_function(
        data.dataset_fn(record_dir, data.eval_dataset, seq_length=16, global_batch_size=12, vocab_size=50, steps=4)
    )
    steps, rows = 0, []
    for x, y, w in dataset:
        steps += 1
        parts = [info.strategy.experimental_local_results(v) for v in (x, y, w)]
        for replica in range(info.num_replicas):
            xr, yr, wr = (tf.nest.map_structure(np.asarray, part[replica]) for part in parts)
            tokens = xr["token_ids"].copy()
            r, s = np.nonzero(wr)
            tokens[r, xr["mask_positions"][r, s]] = yr[r, s]
            rows += tokens.tolist()
    return {"steps": steps, "rows": rows}


def keras_hub_fit(info) -> dict:
    """Stock KerasHub ``BertMaskedLM.fit`` on a distributed dataset (the crash the project works
    around), and ours."""
    import keras
    import keras_hub


    from kcbert_tf.model.backbone import build_backbone
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model

    config = BertConfig.from_dict(json.load(open(os.path.join(os.path.dirname(__file__), "..", "configs",
                                                          "kcbert-tiny.json"))))
    x = {
        "token_ids": np.tile(np.arange(5, 21, dtype=np.int32), (4, 1)),
        "segment_ids": np.zeros((4, 16), np.int32),
        "padding_mask": np.ones((4, 16), np.int32),
        "mask_positions": np.tile(np.array([1, 2], np.int32), (4, 1)),
    }
    y = np.full((4, 2), 7, np.int32)
    dataset = info.strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((x, y)).repeat(2))
    result = {}
    with info.strategy.scope():
        stock = keras_hub.models.BertMaskedLM(build_backbone(config), preprocessor=None)
        stock.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ours = build_model(config)
        ours.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for name, model in (("stock", stock), ("ours", ours)):
        try:
            model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)
            result[name] = "ok"
        except Exception as error:  # noqa: BLE001 - reported
            result[name] = f"{type(error).__name__}: {str(error)[:200]}"
    return result


def main() -> None:
    check, replicas = sys.argv[1], int(sys.argv[2])
    info = resolve_strategy(cpu_replicas=replicas)
    result = {"clip": clip, "dropout": dropout, "eval": evaluation, "keras_hub_fit": keras_hub_fit}[check](
        info, *sys.argv[3:]
    )
    print(json.dumps({"replicas": info.num_replicas, **result}))


if __name__ == "__main__":
    main()
