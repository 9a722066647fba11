"""configs/: the real KcBERT configs in Hugging Face form, and the tiny one for tests and the demo."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, shared_file

CONFIGS = REPO / "configs"


@pytest.mark.parametrize("name, shared", [("kcbert-base", "config-base"), ("kcbert-large", "config-large")])
def test_model_configs_match_the_published_kcbert_configs(name, shared):
    ours = json.loads((CONFIGS / f"{name}.json").read_text())
    published = json.loads(shared_file(f"kcbert/{shared}.json").read_text())
    for key, value in ours.items():
        assert published.get(key, {"layer_norm_eps": 1e-12, "pad_token_id": 0}.get(key)) == value, key
    assert ours["max_position_embeddings"] == 300 and ours["vocab_size"] == 30000
    assert ours["hidden_act"] == "gelu"


@pytest.mark.parametrize("name", ["kcbert-base", "kcbert-large", "kcbert-tiny"])
def test_configs_load_in_transformers(name):
    from transformers import BertConfig

    config = BertConfig.from_json_file(str(CONFIGS / f"{name}.json"))
    assert config.model_type == "bert" and config.hidden_act == "gelu"
    assert config.hidden_size % config.num_attention_heads == 0
