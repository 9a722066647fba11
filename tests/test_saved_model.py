"""The SavedModel export: loaded with only TensorFlow + tensorflow_text, its packing against
transformers' AutoTokenizer id for id, its numbers against the Keras model."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import randomize, reference_tokenizer
from kcbert_tf.text.cleaning import clean
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.presets import build_model
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.cli import main as cli
from kcbert_tf.conversion.saved_model import PROG, export_saved_model
from kcbert_tf.text.model_inputs import pack_pair, pack_single
from kcbert_tf.text.tokenizer import load_tokenizer
from kcbert_tf.text.vocab import read_vocab

MAX_POSITIONS = 64  # the tiny config's max_position_embeddings: the export's default length
SHORT = 16  # a second export, where most comments and pairs need truncating

OUTPUT_NAMES = (
    "token_ids", "segment_ids", "padding_mask", "sequence_output", "pooled_output", "mlm_logits"
)
#: The texts as the model saw them (a masked LM takes them as given).
TEXT_OUTPUTS = {"single": ("text",), "pair": ("text_a", "text_b")}

LOAD_AND_RUN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    arrays = {}
    for name, path in spec["exports"].items():
        loaded = tf.saved_model.load(path)
        assert sorted(loaded.signatures) == ["lengths", "pair", "pair_lengths", "serving_default"], sorted(loaded.signatures)
        single = loaded.signatures["serving_default"](text=tf.constant(spec["texts"]))
        pair = loaded.signatures["pair"](
            text_a=tf.constant(spec["texts_a"]), text_b=tf.constant(spec["texts_b"])
        )
        # lengths / pair_lengths: the ids each input packs to, as the packing's mask counts them
        lengths = loaded.signatures["lengths"](text=tf.constant(spec["texts"]))["num_ids"].numpy()
        assert (lengths == single["padding_mask"].numpy().sum(1)).all()
        lengths = loaded.signatures["pair_lengths"](
            text_a=tf.constant(spec["texts_a"]), text_b=tf.constant(spec["texts_b"]))["num_ids"].numpy()
        assert (lengths == pair["padding_mask"].numpy().sum(1)).all()
        empty = loaded.signatures["serving_default"](text=tf.constant([], dtype=tf.string))
        assert empty["mlm_logits"].shape[0] == 0 and empty["pooled_output"].shape[0] == 0
        for signature, outputs in (("single", single), ("pair", pair)):
            for key, value in outputs.items():
                arrays[f"{name}__{signature}__{key}"] = value.numpy()
    np.savez(spec["out"], **arrays)
    banned = [m for m in ("kcbert_tf", "keras_hub", "transformers", "torch") if m in sys.modules]
    assert not banned, banned
    print("ok")
    """
)


@pytest.fixture(scope="module")
def tiny(kcbert_vocab, tmp_path_factory):
    """A tiny random model on the real KcBERT vocab, its model dir, transformers' tokenizer."""
    vocab = read_vocab(kcbert_vocab)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
    )
    model = build_model(config)
    randomize(model)
    model_dir = tmp_path_factory.mktemp("model")
    ModelDir.write(str(model_dir), config, vocab, model)
    reference = reference_tokenizer(kcbert_vocab, tmp_path_factory.mktemp("hf"))
    return model, model_dir, reference


@pytest.fixture(scope="module")
def comments(news_comments):
    """Cleaned real comments: short ones, the longest (truncated at both lengths), an empty one."""
    raw = news_comments.read_text(encoding="utf-8").split("\n")[:2000]
    cleaned = [clean(text) for text in raw]
    longest = sorted(cleaned, key=len)[-4:]
    texts = cleaned[:14] + longest + ["", raw[20]]
    return texts


def keras_outputs(model, ids: dict) -> dict:
    """The Keras model's own numbers on given ids: the backbone, and predict() with every position
    masked for the MLM logits."""
    inputs = {key: np.asarray(value, dtype="int32") for key, value in ids.items()}
    backbone = model.backbone.predict(inputs, verbose=0)
    batch, length = inputs["token_ids"].shape
    every_position = np.broadcast_to(np.arange(length, dtype="int32"), (batch, length))
    logits = model.predict({**inputs, "mask_positions": every_position}, verbose=0)
    return {**backbone, "mlm_logits": logits}


def transformers_ids(reference, max_length: int, texts, texts_b=None) -> dict:
    encoded = reference(texts, texts_b, padding=True, truncation=True, max_length=max_length)
    return {
        "token_ids": np.array(encoded["input_ids"]),
        "segment_ids": np.array(encoded["token_type_ids"]),
        "padding_mask": np.array(encoded["attention_mask"]),
    }


@pytest.mark.slow
def test_saved_model_in_a_process_with_only_tensorflow_matches_transformers_and_keras(
    tiny, comments, tmp_path
):
    model, model_dir, reference = tiny
    exports = {
        MAX_POSITIONS: export_saved_model(model_dir, tmp_path / "sm-default"),
        SHORT: export_saved_model(model_dir, tmp_path / "sm-short", max_seq_length=SHORT),
    }
    for path in exports.values():
        assets = pathlib.Path(path) / "assets"
        assert (assets / "vocab.txt").read_bytes() == (model_dir / "vocab.txt").read_bytes()
        config = json.loads((assets / "config.json").read_text())
        assert config == json.loads((model_dir / "config.json").read_text())
    texts_a = comments + ["", "짧다"]
    texts_b = comments[::-1] + ["", comments[-3]]  # long with short, long with long, empty ones
    spec = {
        "exports": {str(length): path for length, path in exports.items()},
        "texts": comments,
        "texts_a": texts_a,
        "texts_b": texts_b,
        "out": str(tmp_path / "outputs.npz"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(tmp_path / "spec.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    got = np.load(tmp_path / "outputs.npz")

    unbounded = reference(comments, add_special_tokens=False)["input_ids"]
    assert max(map(len, unbounded)) > MAX_POSITIONS - 2  # some comments really are truncated
    for length in exports:
        for signature, args in (("single", (comments,)), ("pair", (texts_a, texts_b))):
            want = transformers_ids(reference, length, *args)
            prefix = f"{length}__{signature}__"
            names = sorted(key[len(prefix):] for key in got if key.startswith(prefix))
            assert names == sorted(OUTPUT_NAMES + TEXT_OUTPUTS[signature])
            for key, value in want.items():
                assert got[prefix + key].dtype == np.int32
                np.testing.assert_array_equal(got[prefix + key], value, err_msg=prefix + key)
            assert want["token_ids"].shape[1] <= length
            numbers = keras_outputs(model, want)
            for key, value in numbers.items():
                assert got[prefix + key].dtype == np.float32
                np.testing.assert_allclose(
                    got[prefix + key], value, rtol=1e-5, atol=1e-5, err_msg=prefix + key
                )
            batch, length = want["token_ids"].shape
            vocab_size = model.backbone.vocabulary_size
            assert got[prefix + "mlm_logits"].shape == (batch, length, vocab_size)


CLASSIFY = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    arrays = {}
    for name, path in spec["exports"].items():
        loaded = tf.saved_model.load(path)
        single = loaded.signatures["serving_default"](text=tf.constant(spec["texts"]))
        pair = loaded.signatures["pair"](text_a=tf.constant(spec["texts_a"]), text_b=tf.constant(spec["texts_b"]))
        for signature, outputs in (("single", single), ("pair", pair)):
            for key, value in outputs.items():
                value = value.numpy()
                arrays[f"{name}__{signature}__{key}"] = (
                    np.array([v.decode("utf-8") for v in value]) if value.dtype == object else value
                )
    np.savez(spec["out"], **arrays)
    banned = [m for m in ("kcbert_tf", "keras_hub", "transformers", "torch", "emoji", "soynlp") if m in sys.modules]
    assert not banned, banned
    print("ok")
    """
)


@pytest.mark.slow
def test_a_fine_tuned_classifier_exports_with_clean_in_the_graph_and_matches_transformers_and_keras(
    kcbert_vocab, news_comments, tmp_path
):
    """Raw, uncleaned comments in; clean() (Python) + transformers' ids + the Keras classifier
    are the reference for the labels, probabilities and scores that come out."""
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.task_record import TaskRecord

    vocab = read_vocab(kcbert_vocab)
    base = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
    )
    length = 24  # the max length it was "fine-tuned" with: the export's default
    models, exports = {}, {}
    for name, labels in (("classes", ["부정", "중립", "긍정"]), ("score", None)):
        config = base.with_labels(labels)
        model = build_model(config)
        randomize(model, seed=len(name))
        model_dir = tmp_path / name
        record = TaskRecord("custom", config.head, length, clean=True, labels=None if labels is None else tuple(labels))
        ModelDir.write(str(model_dir), config, vocab, model, task=record)
        models[name] = model
        exports[name] = export_saved_model(model_dir, tmp_path / f"sm-{name}")
        assets = pathlib.Path(exports[name]) / "assets"
        described = json.loads((assets / "task.json").read_text())  # the task record the export was made with
        assert (described["max_seq_length"], described["clean"], described["labels"]) == (length, True, labels)
        assert json.loads((assets / "export.json").read_text())["kind"] == ("regressor" if labels is None else "classifier")

    raw = news_comments.read_text(encoding="utf-8").split("\n")[:2000]
    raw = [text for text in raw if text != clean(text)][:40]  # comments that cleaning changes
    assert len(raw) == 40
    texts_a, texts_b = raw[:20], raw[20:]
    spec = {"exports": exports, "texts": raw, "texts_a": texts_a, "texts_b": texts_b, "out": str(tmp_path / "out.npz")}
    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", CLASSIFY, str(tmp_path / "spec.json")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")

    reference = reference_tokenizer(kcbert_vocab, tmp_path / "hf")
    for signature, args in (("single", (raw,)), ("pair", (texts_a, texts_b))):
        want = transformers_ids(reference, length, *[[clean(text) for text in texts] for texts in args])
        inputs = {key: value.astype("int32") for key, value in want.items()}
        for key, value in want.items():
            np.testing.assert_array_equal(got[f"classes__{signature}__{key}"], value, err_msg=key)
        logits = models["classes"].predict(inputs, verbose=0)
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        prefix = f"classes__{signature}__"
        np.testing.assert_allclose(got[prefix + "logits"], logits, atol=1e-5)
        np.testing.assert_allclose(got[prefix + "probabilities"], probabilities, atol=1e-5)
        assert got[prefix + "label_id"].tolist() == logits.argmax(-1).tolist()
        assert got[prefix + "label"].tolist() == [["부정", "중립", "긍정"][i] for i in logits.argmax(-1)]
        scores = models["score"].predict(inputs, verbose=0)[:, 0]
        np.testing.assert_allclose(got[f"score__{signature}__score"], scores, atol=1e-5)
        assert f"score__{signature}__probabilities" not in got


def test_pair_trimming_is_transformers_longest_first_for_every_length(kcbert_vocab, tmp_path):
    """Every split of the budget, odd and even, ties included, empty texts included."""
    tokenizer = load_tokenizer(kcbert_vocab)
    reference = reference_tokenizer(kcbert_vocab, tmp_path / "hf")
    lengths = [(a, b) for a in range(10) for b in range(10)]
    texts_a = [" ".join(["가"] * a) for a, _ in lengths]
    texts_b = [" ".join(["나"] * b) for _, b in lengths]
    for max_length in range(3, 14):
        want = transformers_ids(reference, max_length, texts_a, texts_b)
        got = pack_pair(tokenizer, texts_a, texts_b, max_length)
        for key, value in want.items():
            np.testing.assert_array_equal(got[key].numpy(), value, err_msg=f"{key} at {max_length}")
        want = transformers_ids(reference, max_length, texts_a)
        got = pack_single(tokenizer, texts_a, max_length)
        for key, value in want.items():
            np.testing.assert_array_equal(
                got[key].numpy(), value, err_msg=f"single {key} at {max_length}"
            )


# --- Errors ---------------------------------------------------------------------------------------


def run_main(argv, capsys) -> tuple[int, str]:
    code = cli(["export-savedmodel", *[str(arg) for arg in argv]])
    return code, capsys.readouterr().err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def copy_model_dir(tiny, tmp_path):
    _, model_dir, _ = tiny
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def test_missing_model_dir(tmp_path, capsys):
    code, err = run_main(["--model-dir", tmp_path / "nope", "--output", tmp_path / "sm"], capsys)
    assert code == 2
    assert_one_error_line(
        err, str(tmp_path / "nope"), "no such directory", "config.json, vocab.txt, model.weights.h5"
    )
    assert not (tmp_path / "sm").exists()


@pytest.mark.parametrize("missing", ["config.json", "vocab.txt", "model.weights.h5"])
def test_missing_model_files(tiny, tmp_path, capsys, missing):
    model_dir = copy_model_dir(tiny, tmp_path)
    (model_dir / missing).unlink()
    code, err = run_main(["--model-dir", model_dir, "--output", tmp_path / "sm"], capsys)
    assert code == 2
    fix = "run it again to resume" if missing == "model.weights.h5" else "a model directory holds"
    assert_one_error_line(err, str(model_dir), missing, fix)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing written


def test_vocab_size_differs_from_config(tiny, tmp_path, capsys):
    model_dir = copy_model_dir(tiny, tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    config["vocab_size"] = 29_999
    (model_dir / "config.json").write_text(json.dumps(config))
    code, err = run_main(["--model-dir", model_dir, "--output", tmp_path / "sm"], capsys)
    assert code == 2
    assert_one_error_line(err, str(model_dir / "vocab.txt"), "30,000 tokens", "vocab_size 29,999")


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_of_another_config(tiny, tmp_path, capsys):
    model_dir = copy_model_dir(tiny, tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    config["hidden_size"] = 16
    (model_dir / "config.json").write_text(json.dumps(config))
    code, err = run_main(["--model-dir", model_dir, "--output", tmp_path / "sm"], capsys)
    assert code == 2
    assert_one_error_line(
        err, str(model_dir / "model.weights.h5"), "give the config the weights were trained with"
    )


@pytest.mark.parametrize(
    "length, message",
    [
        (MAX_POSITIONS + 1, f"more than max_position_embeddings {MAX_POSITIONS}"),
        (2, "needs at least 3"),
        ("many", "not an integer"),
    ],
)
def test_bad_max_seq_length(tiny, tmp_path, capsys, length, message):
    _, model_dir, _ = tiny
    code, err = run_main(
        ["--model-dir", model_dir, "--output", tmp_path / "sm", "--max-seq-length", length], capsys
    )
    assert code == 2 and message in err, err
    if length == MAX_POSITIONS + 1:
        config = str(model_dir / "config.json")
        assert_one_error_line(err, "--max-seq-length", config, "pass 64 or less")
    elif length == 2:
        assert_one_error_line(err, "--max-seq-length", "pass 3 to 64")
    assert not (tmp_path / "sm").exists()


def test_remote_or_file_output_is_refused(tiny, tmp_path, capsys):
    _, model_dir, _ = tiny
    code, err = run_main(["--model-dir", model_dir, "--output", "gs://bucket/sm"], capsys)
    assert code == 2
    assert_one_error_line(err, "gs://bucket/sm", "give a local directory")
    (tmp_path / "file").write_text("x")
    code, err = run_main(["--model-dir", model_dir, "--output", tmp_path / "file"], capsys)
    assert code == 2
    assert_one_error_line(err, str(tmp_path / "file"), "is a file")


def test_existing_output_is_kept_without_overwrite_and_replaced_whole_with_it(
    tiny, tmp_path, capsys
):
    _, model_dir, _ = tiny
    output = tmp_path / "out" / "sm"
    output.mkdir(parents=True)
    (output / "keep.txt").write_text("precious")
    code, err = run_main(["--model-dir", model_dir, "--output", output], capsys)
    assert code == 2
    assert_one_error_line(err, str(output), "keep.txt", "--overwrite")
    assert sorted(p.name for p in output.iterdir()) == ["keep.txt"]
    assert (output / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in output.parent.iterdir()) == ["sm"]

    code, err = run_main(
        ["--model-dir", model_dir, "--output", output, "--max-seq-length", "8", "--overwrite"],
        capsys,
    )
    assert code == 0, err
    assert not (output / "keep.txt").exists()
    assert (output / "saved_model.pb").is_file() and (output / "variables").is_dir()
    assert json.loads((output / "assets" / "task.json").read_text())["max_seq_length"] == 8
    # Each weight is saved once (tracking the Keras model as well would save them twice).
    saved = sum(p.stat().st_size for p in (output / "variables").iterdir())
    assert saved < 1.2 * (model_dir / "model.weights.h5").stat().st_size
    assert sorted(p.name for p in output.parent.iterdir()) == ["sm"]  # no temporary left behind
