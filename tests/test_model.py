"""The Keras model against transformers' BertForMaskedLM, weights copied over by hand here."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import model_config
from kcbert_tf.errors import ConfigError
from kcbert_tf.model.config import BertConfig, read_model_config
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.presets import build_model, load_model

TINY = model_config(vocab_size=97, max_position_embeddings=40, attention_probs_dropout_prob=0.2)


def copy_hf_weights_to_keras(hf_model, keras_model):
    """The weight mapping written out by hand: HF BertForMaskedLM → KcBertMaskedLM."""
    sd = {name: tensor.detach().numpy() for name, tensor in hf_model.state_dict().items()}
    backbone = keras_model.backbone
    heads = backbone.num_heads
    hidden = backbone.hidden_dim
    head_dim = hidden // heads
    backbone.token_embedding.embeddings.assign(sd["bert.embeddings.word_embeddings.weight"])
    backbone.position_embedding.position_embeddings.assign(sd["bert.embeddings.position_embeddings.weight"])
    backbone.segment_embedding.embeddings.assign(sd["bert.embeddings.token_type_embeddings.weight"])
    backbone.embeddings_layer_norm.gamma.assign(sd["bert.embeddings.LayerNorm.weight"])
    backbone.embeddings_layer_norm.beta.assign(sd["bert.embeddings.LayerNorm.bias"])
    for index, layer in enumerate(backbone.transformer_layers):
        p = f"bert.encoder.layer.{index}."
        attention = layer._self_attention_layer
        for name, dense in (("query", attention._query_dense), ("key", attention._key_dense), ("value", attention._value_dense)):
            dense.kernel.assign(sd[p + f"attention.self.{name}.weight"].T.reshape(hidden, heads, head_dim))
            dense.bias.assign(sd[p + f"attention.self.{name}.bias"].reshape(heads, head_dim))
        attention._output_dense.kernel.assign(sd[p + "attention.output.dense.weight"].T.reshape(heads, head_dim, hidden))
        attention._output_dense.bias.assign(sd[p + "attention.output.dense.bias"])
        layer._self_attention_layer_norm.gamma.assign(sd[p + "attention.output.LayerNorm.weight"])
        layer._self_attention_layer_norm.beta.assign(sd[p + "attention.output.LayerNorm.bias"])
        layer._feedforward_intermediate_dense.kernel.assign(sd[p + "intermediate.dense.weight"].T)
        layer._feedforward_intermediate_dense.bias.assign(sd[p + "intermediate.dense.bias"])
        layer._feedforward_output_dense.kernel.assign(sd[p + "output.dense.weight"].T)
        layer._feedforward_output_dense.bias.assign(sd[p + "output.dense.bias"])
        layer._feedforward_layer_norm.gamma.assign(sd[p + "output.LayerNorm.weight"])
        layer._feedforward_layer_norm.beta.assign(sd[p + "output.LayerNorm.bias"])
    head = keras_model.masked_lm_head
    head._intermediate_dense.kernel.assign(sd["cls.predictions.transform.dense.weight"].T)
    head._intermediate_dense.bias.assign(sd["cls.predictions.transform.dense.bias"])
    head._intermediate_layer_norm.gamma.assign(sd["cls.predictions.transform.LayerNorm.weight"])
    head._intermediate_layer_norm.beta.assign(sd["cls.predictions.transform.LayerNorm.bias"])
    head._bias.assign(sd["cls.predictions.bias"])


def random_batch(rng, batch, length, vocab):
    ids = rng.integers(5, vocab, size=(batch, length)).astype("int32")
    ids[:, 0] = 2
    lengths = rng.integers(length // 2, length + 1, size=batch)
    for row, n in enumerate(lengths):
        ids[row, n - 1] = 3
        ids[row, n:] = 0
    return ids


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_new"])
def test_logits_match_transformers_bert_for_masked_lm(hidden_act):
    import torch
    from transformers import BertConfig as HFBertConfig, BertForMaskedLM

    config = {**TINY, "hidden_act": hidden_act}
    torch.manual_seed(0)
    hf = BertForMaskedLM(HFBertConfig(**config)).eval()
    with torch.no_grad():  # Non-trivial LayerNorm and bias values, so a mix-up would show.
        for name, tensor in hf.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                tensor.add_(torch.randn_like(tensor) * 0.1)
    model = build_model(BertConfig.from_dict(config))
    copy_hf_weights_to_keras(hf, model)

    rng = np.random.default_rng(0)
    ids = random_batch(rng, batch=3, length=24, vocab=config["vocab_size"])
    mask = (ids != 0).astype("int32")
    with torch.no_grad():
        expected = hf(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)).logits.numpy()
    positions = np.tile(np.arange(ids.shape[1], dtype="int32"), (ids.shape[0], 1))
    got = model.predict(
        {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask, "mask_positions": positions},
        verbose=0,
    )
    assert np.abs(got - expected).max() < 1e-5
    # The stock KerasHub choices (tanh GELU in the encoder, eps 1e-5 in the head) would not match:
    assert model.backbone.transformer_layers[0].activation.__name__ == ("gelu" if hidden_act == "gelu" else "gelu_approximate")


def test_dropout_rates_and_initializer_follow_the_config():
    model = build_model(BertConfig.from_dict({**TINY, "initializer_range": 0.5}))
    layer = model.backbone.transformer_layers[0]
    assert layer._self_attention_layer._dropout_layer.rate == 0.2
    assert layer._self_attention_dropout.rate == 0.1 and layer._feedforward_dropout.rate == 0.1
    assert model.masked_lm_head.layer_norm_epsilon == 1e-12
    std = float(np.std(model.backbone.token_embedding.embeddings.numpy()))
    assert 0.3 < std < 0.5  # truncated normal with stddev 0.5 (truncation shrinks it to ~0.44)


def test_model_dir_round_trip_and_config_round_trip(tmp_path):
    import keras

    config = BertConfig.from_dict(TINY)
    model = build_model(config)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(92)]
    ModelDir.write(str(tmp_path / "m"), config, vocab, model)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.weights.h5", "vocab.txt"]
    again = load_model(tmp_path / "m")
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert read_model_config(tmp_path / "m") == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert restored.backbone.get_config() == model.backbone.get_config()


def test_vocab_config_mismatch_is_a_clear_error(tmp_path):
    config = BertConfig.from_dict(TINY)
    ModelDir.write(str(tmp_path), config, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"], build_model(config))
    with pytest.raises(ConfigError, match="6 tokens but .*vocab_size 97"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "gpt2"}, "only BERT configs"),
        ({"hidden_act": "mish"}, "hidden_act 'mish' is not supported"),
        ({"num_attention_heads": 5}, "not divisible"),
        ({"vocab_size": None}, "vocab_size must be a positive integer"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, change, message):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, **change}))
    with pytest.raises(ConfigError, match=message):
        read_model_config(path)


def test_weights_of_another_config_are_refused(tmp_path):
    import json

    config = BertConfig.from_dict(TINY)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(92)]
    ModelDir.write(str(tmp_path), config, vocab, build_model(config))
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "num_hidden_layers": 1}))
    with pytest.raises(ConfigError, match="weights and the config are from different models"):
        load_model(tmp_path)
