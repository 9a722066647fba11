"""export-hf / import-hf: bit-exact round trips, logits against transformers, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import model_config
from kcbert_tf.conversion import hugging_face as hf_conversion
from kcbert_tf.cli import main as cli
from kcbert_tf.text.cleaning import clean
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.model.presets import build_model, load_model

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY = {
    key: value
    for key, value in model_config(max_position_embeddings=80).items()
    if key not in ("architectures", "model_type", "vocab_size")
}


def small_vocab(size: int) -> list[str]:
    """Specials, then Hangul syllables and their ## forms: real comments tokenize to non-[UNK] ids."""
    syllables = [chr(0xAC00 + i * 7) for i in range((size - 5) // 2)]
    tokens = SPECIALS + syllables + [f"##{s}" for s in syllables]
    return (tokens + [f"x{i}" for i in range(size)])[:size]


def hf_directory(path, architecture="BertForPreTraining", vocab_size=201, seed=0, **changes):
    """A random transformers checkpoint with non-trivial LayerNorm and bias values, saved."""
    import torch
    import transformers

    config = transformers.BertConfig(vocab_size=vocab_size, **{**TINY, **changes})
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(config)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                tensor.add_(torch.randn_like(tensor) * 0.1)
    model.save_pretrained(path)
    (path / "vocab.txt").write_text("".join(t + "\n" for t in small_vocab(vocab_size)), encoding="utf-8")
    return path


def keras_directory(path, vocab_size=201, seed=1):
    import keras

    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=vocab_size, **TINY)
    model = build_model(config)
    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:  # nothing left at its initial zeros or ones
        variable.assign(variable.numpy() + rng.normal(0, 0.05, variable.shape).astype("float32"))
    ModelDir.write(str(path), config, small_vocab(vocab_size), model)
    return model


def run(command, *args):
    return cli([command, *map(str, args)])


def test_hf_to_keras_to_hf_returns_every_tensor_bit_for_bit(tmp_path):
    source = hf_directory(tmp_path / "hf")
    assert run("import-hf", "--input", source, "--output", tmp_path / "keras") == 0
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "back") == 0
    before = load_file(str(source / "model.safetensors"))
    after = load_file(str(tmp_path / "back" / "model.safetensors"))
    nsp = {"cls.seq_relationship.weight", "cls.seq_relationship.bias"}  # no place in a masked LM
    assert set(before) - nsp == set(after)
    for name in after:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_keras_to_hf_to_keras_returns_every_tensor_bit_for_bit(tmp_path):
    model = keras_directory(tmp_path / "keras")
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "hf") == 0
    assert run("import-hf", "--input", tmp_path / "hf", "--output", tmp_path / "again") == 0
    again = load_model(tmp_path / "again")
    assert len(model.trainable_weights) == len(again.trainable_weights) > 30
    for a, b in zip(model.trainable_weights, again.trainable_weights):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_exported_model_gives_transformers_logits_on_real_comments(tmp_path, news_comments, kcbert_vocab):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    config = BertConfig(vocab_size=30000, **TINY)
    model = build_model(config)
    vocab = kcbert_vocab.read_text(encoding="utf-8").split("\n")[:30000]
    ModelDir.write(str(tmp_path / "keras"), config, vocab, model)
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "hf") == 0

    texts = [clean(line) for line in news_comments.read_text(encoding="utf-8").splitlines()[:64]]
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    batch = tokenizer(texts, padding=True, truncation=True, max_length=80, return_tensors="np")
    hf = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "hf")).eval()
    with torch.no_grad():
        expected = hf(input_ids=torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(batch["attention_mask"])).logits.numpy()
    ids = batch["input_ids"]
    got = hf_conversion.keras_outputs(model, ids, "masked_lm")
    mask = batch["attention_mask"].astype(bool)
    assert np.abs(got - expected)[mask].max() < 1e-4
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    shape = f"{TINY['num_hidden_layers']} x {TINY['hidden_size']} x {TINY['num_attention_heads']}"
    assert shape in card and "fill-mask" in card


def test_a_bert_model_without_head_gets_the_tied_head_with_a_warning(tmp_path, capsys):
    source = hf_directory(tmp_path / "hf", architecture="BertModel")
    assert run("import-hf", "--input", source, "--output", tmp_path / "keras") == 0
    assert "has no MLM head" in capsys.readouterr().err
    model = load_model(tmp_path / "keras")
    before = load_file(str(source / "model.safetensors"))
    np.testing.assert_array_equal(model.backbone.token_embedding.embeddings.numpy(), before["embeddings.word_embeddings.weight"])


def test_pickle_checkpoints_need_allow_pickle(tmp_path, capsys):
    import torch

    source = hf_directory(tmp_path / "hf", architecture="BertForMaskedLM")
    state = {name: torch.tensor(array) for name, array in load_file(str(source / "model.safetensors")).items()}
    os.remove(source / "model.safetensors")
    torch.save(state, source / "pytorch_model.bin")
    assert run("import-hf", "--input", source, "--output", tmp_path / "k") == 2
    assert "pass --allow-pickle" in capsys.readouterr().err and not (tmp_path / "k").exists()
    assert run("import-hf", "--input", source, "--output", tmp_path / "k", "--allow-pickle") == 0


def test_verification_failure_writes_nothing(tmp_path, monkeypatch, capsys):
    keras_directory(tmp_path / "keras")
    monkeypatch.setattr(hf_conversion, "TOLERANCE", -1.0)  # no difference can pass
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "hf") == 2
    assert "verification failed" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["keras"]  # no output, no staging left behind


def corrupt(path, problem, tmp_path):
    if problem == "shape":
        tensors = load_file(str(path / "model.safetensors"))
        needed = (TINY["intermediate_size"], TINY["hidden_size"])  # HF stores (out, in)
        tensors["bert.encoder.layer.1.intermediate.dense.weight"] = np.zeros((needed[0] - 1, needed[1]), "float32")
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
        return (
            f"bert.encoder.layer.1.intermediate.dense.weight has shape ({needed[0] - 1}, {needed[1]}), "
            f"the config needs {needed}"
        )
    if problem == "vocab size":
        (path / "vocab.txt").write_text("".join(t + "\n" for t in small_vocab(150)), encoding="utf-8")
        return "has 150 tokens but"
    if problem == "architecture":
        config = json.loads((path / "config.json").read_text())
        config["architectures"] = ["BertForNextSentencePrediction"]
        (path / "config.json").write_text(json.dumps(config))
        return "not supported; import-hf reads BertForMaskedLM, BertForPreTraining, BertModel, BertForSequenceClassification"
    if problem == "not bert":
        config = json.loads((path / "config.json").read_text())
        config["model_type"] = "gpt2"
        (path / "config.json").write_text(json.dumps(config))
        return "only BERT configs"
    if problem == "no weights":
        os.remove(path / "model.safetensors")
        return "no model.safetensors"
    if problem == "no vocab":
        os.remove(path / "vocab.txt")
        return "vocab.txt: no such vocab file"
    raise AssertionError(problem)


@pytest.mark.parametrize("problem", ["shape", "vocab size", "architecture", "not bert", "no weights", "no vocab"])
def test_bad_checkpoints_are_clear_errors_and_write_nothing(tmp_path, capsys, problem):
    source = hf_directory(tmp_path / "hf")
    message = corrupt(source, problem, tmp_path)
    assert run("import-hf", "--input", source, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "kcbert-tf import-hf: error:" in err and message in err, err
    assert sorted(os.listdir(tmp_path)) == ["hf"]


def test_export_refuses_a_non_empty_output_and_a_missing_model(tmp_path, capsys):
    keras_directory(tmp_path / "keras")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("mine")
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "hf") == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "hf" / "keep.txt").read_text() == "mine"
    os.remove(tmp_path / "keras" / "model.weights.h5")
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "other") == 2
    assert "no final weights" in capsys.readouterr().err


@pytest.mark.slow
def test_base_size_model_round_trips_with_transformers_parity(tmp_path, kcbert_vocab):
    """The real KcBERT-Base shape (110M parameters): export verified, import back bit for bit."""
    from conftest import REPO
    from kcbert_tf.model.config import read_model_config

    config = read_model_config(REPO / "configs" / "kcbert-base.json")
    model = build_model(config)
    vocab = kcbert_vocab.read_text(encoding="utf-8").split("\n")[:30000]
    ModelDir.write(str(tmp_path / "keras"), config, vocab, model)
    assert run("export-hf", "--model-dir", tmp_path / "keras", "--output", tmp_path / "hf") == 0
    assert run("import-hf", "--input", tmp_path / "hf", "--output", tmp_path / "again") == 0
    again = load_model(tmp_path / "again")
    for a, b in zip(model.trainable_weights, again.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("labels", [["neg", "neu", "pos"], None])
def test_a_fine_tuned_classifier_exports_to_bert_for_sequence_classification_and_back(tmp_path, labels):
    """Export a classifier (three classes, or a regressor), load it with transformers'
    AutoModelForSequenceClassification, compare logits on real-looking comments, import it back
    bit for bit."""
    import keras
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kcbert_tf.model.presets import build_model

    keras.utils.set_random_seed(3)
    config = BertConfig(vocab_size=201, **TINY).with_labels(labels)
    model = build_model(config)
    rng = np.random.default_rng(3)
    for variable in model.trainable_weights:
        variable.assign(variable.numpy() + rng.normal(0, 0.05, variable.shape).astype("float32"))
    record = TaskRecord("korsts" if labels is None else "kornli", config.head, 72, clean=True,
                        labels=None if labels is None else tuple(labels), segments=2,
                        options={"columns": {"text": "sentence1", "label": "gold_label", "text_pair": "sentence2"}})
    ModelDir.write(str(tmp_path / "keras"), config, small_vocab(201), model, task=record)
    assert cli(["export-hf", "--model-dir", str(tmp_path / "keras"), "--output", str(tmp_path / "hf")]) == 0
    exported = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert exported["architectures"] == ["BertForSequenceClassification"]
    if labels is None:
        assert exported["problem_type"] == "regression" and exported["num_labels"] == 1
    else:
        assert exported["id2label"] == {"0": "neg", "1": "neu", "2": "pos"} and exported["label2id"]["pos"] == 2

    hf = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    assert hf.config.num_labels == (1 if labels is None else 3)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    texts = [clean(t) for t in ("가나다 라마바 ㅋㅋㅋㅋ", "사아자 차카 타파하!!", "[MASK] 가 나")]
    batch = tokenizer(texts, padding=True, return_tensors="np")
    with torch.no_grad():
        expected = hf(**{k: torch.tensor(v) for k, v in batch.items()}).logits.numpy()
    got = model.predict({
        "token_ids": batch["input_ids"].astype("int32"),
        "segment_ids": batch["token_type_ids"].astype("int32"),
        "padding_mask": batch["attention_mask"].astype("int32"),
    }, verbose=0)
    assert np.abs(got - expected).max() < 1e-4

    assert cli(["import-hf", "--input", str(tmp_path / "hf"), "--output", str(tmp_path / "again")]) == 0
    again = ModelDir.read(tmp_path / "again")
    assert again.config == config
    assert again.task == record  # the task record travels through the Hugging Face directory
    for a, b in zip(model.weights, load_model(again).weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("head", ["token_classification", "question_answering"])
def test_ner_and_qa_models_export_to_transformers_heads_and_back(tmp_path, head):
    """A token classifier → BertForTokenClassification (id2label), a question answerer →
    BertForQuestionAnswering: transformers' logits on the same ids within 1e-4, and import gives
    every weight transformers uses back bit for bit (the pooler, which neither has, is left out)."""
    import keras
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification, AutoTokenizer

    from kcbert_tf.model.presets import build_model

    keras.utils.set_random_seed(5)
    base = BertConfig(vocab_size=201, **TINY)
    labels = ["O", "B-PS", "I-PS", "B-LC", "I-LC"]
    config = base.with_token_labels(labels) if head == "token_classification" else base.for_question_answering()
    model = build_model(config)
    rng = np.random.default_rng(5)
    for variable in model.trainable_weights:
        variable.assign(variable.numpy() + rng.normal(0, 0.05, variable.shape).astype("float32"))
    ModelDir.write(str(tmp_path / "keras"), config, small_vocab(201), model)
    assert cli(["export-hf", "--model-dir", str(tmp_path / "keras"), "--output", str(tmp_path / "hf")]) == 0
    exported = json.loads((tmp_path / "hf" / "config.json").read_text())
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert not [name for name in tensors if name.startswith("bert.pooler.")]
    if head == "token_classification":
        assert exported["architectures"] == ["BertForTokenClassification"]
        assert exported["id2label"] == {str(i): name for i, name in enumerate(labels)} and "problem_type" not in exported
        hf = AutoModelForTokenClassification.from_pretrained(str(tmp_path / "hf")).eval()
        assert tensors["classifier.weight"].shape == (5, TINY["hidden_size"])
    else:
        assert exported["architectures"] == ["BertForQuestionAnswering"] and "id2label" not in exported
        hf = AutoModelForQuestionAnswering.from_pretrained(str(tmp_path / "hf")).eval()
        assert tensors["qa_outputs.weight"].shape == (2, TINY["hidden_size"])

    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    texts = [clean(t) for t in ("가나다 라마바 ㅋㅋㅋㅋ", "사아자 차카 타파하!!", "[MASK] 가 나")]
    batch = tokenizer(texts, ["가 나 다"] * 3, padding=True, return_tensors="np")
    with torch.no_grad():
        out = hf(**{k: torch.tensor(v) for k, v in batch.items()})
    expected = out.logits.numpy() if head == "token_classification" else np.stack(
        [out.start_logits.numpy(), out.end_logits.numpy()], axis=-1)
    got = model.predict({
        "token_ids": batch["input_ids"].astype("int32"),
        "segment_ids": batch["token_type_ids"].astype("int32"),
        "padding_mask": batch["attention_mask"].astype("int32"),
    }, verbose=0)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4

    assert cli(["import-hf", "--input", str(tmp_path / "hf"), "--output", str(tmp_path / "again")]) == 0
    again = ModelDir.read(tmp_path / "again")
    assert again.config == config
    pooler = {id(v) for v in model.backbone.pooled_dense.weights}
    for a, b in zip(model.weights, load_model(again).weights, strict=True):
        if id(a) not in pooler:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
