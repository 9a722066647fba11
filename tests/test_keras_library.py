"""kcbert-tf as a Keras library, checked the way a KerasHub user uses it: the tokenizer and the
preprocessors give transformers' ids (transformers' own tokenizer on KcBERT's ``clean()`` of the
texts is the reference), every model directory is a KerasHub preset that loads with its
preprocessor, a directory ``finetune`` wrote predicts on raw strings what ``kcbert-tf predict``
prints, ``fit`` on raw strings trains alike on one and two replicas, and configs round-trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO, model_config, randomize, reference_tokenizer, shared_file
from kcbert_tf.cleaning import clean
from kcbert_tf.cli import main as cli

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub")


@pytest.fixture(scope="module")
def vocab(kcbert_vocab) -> list[str]:
    from kcbert_tf.text.vocab import read_vocab

    return read_vocab(kcbert_vocab)


@pytest.fixture(scope="module")
def reference(kcbert_vocab, tmp_path_factory):
    return reference_tokenizer(kcbert_vocab, tmp_path_factory.mktemp("hf-tokenizer"))


@pytest.fixture(scope="module")
def comments(news_comments) -> list[str]:
    """Raw, uncleaned real comments (those cleaning changes first), and a few edge cases."""
    lines = [line for line in news_comments.read_text(encoding="utf-8").split("\n")[:3000] if line.strip()]
    changed = [line for line in lines if line != clean(line)]
    return changed[:150] + lines[:50] + ["", "   ", "ㅋ" * 400, "[MASK] 자리", "漢字 only"]


def tiny_config(vocab_size: int, **changes):
    from kcbert_tf.model.config import BertConfig

    return BertConfig.from_dict(model_config(vocab_size=vocab_size, max_position_embeddings=64, **changes))


def test_the_keras_tokenizer_gives_transformers_ids_and_keeps_its_vocab_as_an_asset(vocab, reference, comments,
                                                                                    tmp_path):
    from kcbert_tf.model.tokenizer import KcBertTokenizer

    tokenizer = KcBertTokenizer(vocabulary=vocab)
    got = [list(ids) for ids in tokenizer(comments)]
    assert got == reference(comments, add_special_tokens=False)["input_ids"]
    assert tokenizer.vocabulary_size() == 30_000 and tokenizer.id_to_token(2) == "[CLS]" == vocab[2]
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id) == (0, 2, 3, 4)
    # The config holds no vocab; the vocab is the asset a preset or a .keras file carries.
    config = tokenizer.get_config()
    assert config["vocabulary"] is None
    tokenizer.save_assets(str(tmp_path))
    again = KcBertTokenizer.from_config(config)
    again.load_assets(str(tmp_path))
    assert again.get_vocabulary() == vocab


def test_the_classifier_preprocessor_packs_what_transformers_packs(vocab, reference, comments):
    """Cleaned in the graph exactly as clean() cleans in Python, then transformers' ids, a text or
    a pair truncated as transformers truncates (longest_first), padded to the length."""
    from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor
    from kcbert_tf.model.tokenizer import KcBertTokenizer

    preprocessor = KcBertTextClassifierPreprocessor(KcBertTokenizer(vocabulary=vocab), sequence_length=24)
    firsts, seconds = comments[: len(comments) // 2], comments[len(comments) // 2 : 2 * (len(comments) // 2)]
    for args in ((comments,), (firsts, seconds)):
        want = reference(*[[clean(text) for text in texts] for texts in args], truncation=True, max_length=24,
                         padding="max_length", return_tensors="np")
        got = preprocessor(x=args[0] if len(args) == 1 else tuple(args))
        np.testing.assert_array_equal(got["token_ids"], want["input_ids"])
        np.testing.assert_array_equal(got["segment_ids"], want["token_type_ids"])
        np.testing.assert_array_equal(got["padding_mask"], want["attention_mask"])
    prepared = [text.decode("utf-8") for text in preprocessor.prepare(comments).numpy()]
    assert prepared == [clean(text) for text in comments]
    as_given = KcBertTextClassifierPreprocessor(KcBertTokenizer(vocabulary=vocab), clean=False)
    assert [t.decode("utf-8") for t in as_given.prepare(comments).numpy()] == [text.strip() for text in comments]


def test_the_masked_lm_preprocessor_masks_bert_s_share_of_the_ordinary_tokens(vocab, reference, comments):
    from kcbert_tf.model.masked_lm_preprocessor import KcBertMaskedLMPreprocessor
    from kcbert_tf.model.tokenizer import KcBertTokenizer

    texts = [text for text in comments if clean(text)][:120]
    preprocessor = KcBertMaskedLMPreprocessor(KcBertTokenizer(vocabulary=vocab), sequence_length=48)
    x, mask_ids, weights = preprocessor(texts)
    ids = reference([clean(text) for text in texts], truncation=True, max_length=48, padding="max_length",
                    return_tensors="np")["input_ids"]
    ordinary = ((ids >= 5) | (ids == 1)).sum(axis=1)
    slots = -(-15 * 48 // 100)
    wanted = np.minimum(np.minimum(np.maximum(np.round(ordinary * 0.15), 1), ordinary), slots)
    np.testing.assert_array_equal(np.asarray(weights).sum(axis=1), wanted)
    positions, originals = np.asarray(x["mask_positions"]), np.asarray(mask_ids)
    for row in range(len(texts)):
        for slot in range(int(wanted[row])):
            assert ids[row, positions[row, slot]] == originals[row, slot] and ids[row, positions[row, slot]] >= 1
    masked = np.asarray(x["token_ids"])
    assert (masked != ids).any() and ((masked == 4).sum() > 0)
    # Fill-mask inputs keep the text's own [MASK]s and point at them.
    fill = preprocessor.fill_mask_inputs(["오늘 경기 [MASK] 였다", "[MASK] [MASK] 최고"])
    fill_ids = reference(["오늘 경기 [MASK] 였다", "[MASK] [MASK] 최고"], padding="max_length", max_length=48,
                         return_tensors="np")["input_ids"]
    np.testing.assert_array_equal(fill["token_ids"], fill_ids)
    assert np.asarray(fill["mask_positions"]).tolist() == [list(np.flatnonzero(fill_ids[0] == 4)) + [0],
                                                          list(np.flatnonzero(fill_ids[1] == 4))]


def write_model_directory(directory, vocab, head: str, record=None, seed: int = 0):
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model

    config = tiny_config(len(vocab)).for_head(head, {"sequence_classification": ["부정", "긍정"],
                                                     "token_classification": ["O", "B-PS", "I-PS"]}.get(head))
    model = build_model(config)
    randomize(model, seed)
    ModelDir.write(str(directory), config, vocab, model, task=record)
    return model


@pytest.mark.parametrize("head, base, length, clean_texts", [
    ("masked_lm", "MaskedLM", 64, False),
    ("sequence_classification", "TextClassifier", 40, True),
    ("token_classification", None, 50, False),
    ("question_answering", None, 64, False),
])
def test_every_model_directory_is_a_keras_hub_preset_with_its_preprocessor(vocab, tmp_path, head, base, length,
                                                                          clean_texts):
    from kcbert_tf.model.presets import TASK_MODELS
    from kcbert_tf.model.task_record import TaskRecord

    record = None if head == "masked_lm" else TaskRecord(
        "test-task", head, length, clean_texts, labels={"sequence_classification": ("부정", "긍정"),
                                                       "token_classification": ("O", "B-PS", "I-PS")}.get(head),
        segments=2 if head == "question_answering" else 1)
    written = write_model_directory(tmp_path / "model", vocab, head, record)
    cls = TASK_MODELS[head]
    loaded = (getattr(keras_hub.models, base) if base else cls).from_preset(str(tmp_path / "model"))
    assert type(loaded) is cls
    assert [w.numpy().tolist() for w in loaded.weights] == [w.numpy().tolist() for w in written.weights]
    assert loaded.preprocessor.sequence_length == length and loaded.preprocessor.clean is clean_texts
    assert loaded.preprocessor.tokenizer.get_vocabulary() == vocab
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path / "model"))
    assert [w.numpy().tolist() for w in backbone.weights] == [w.numpy().tolist() for w in written.backbone.weights]
    # save_to_preset writes what from_preset and the commands read: the same model again.
    loaded.save_to_preset(str(tmp_path / "again"))
    again = cls.from_preset(str(tmp_path / "again"))
    assert [w.numpy().tolist() for w in again.weights] == [w.numpy().tolist() for w in written.weights]
    on_disk = json.loads((tmp_path / "again" / "task.json").read_text())
    assert (on_disk["head"], on_disk["max_seq_length"], on_disk["clean"]) == (head, length, clean_texts)
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == json.loads(
        (tmp_path / "model" / "config.json").read_text())


def test_a_new_head_on_a_pretrained_directory_takes_its_encoder(vocab, tmp_path):
    """KerasHub's way to fine-tune from a pretrained preset: ``num_classes`` gives a new head."""
    written = write_model_directory(tmp_path / "mlm", vocab, "masked_lm")
    classifier = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "mlm"), num_classes=3)
    assert classifier.labels == ["0", "1", "2"] and classifier.preprocessor.clean is True
    assert classifier.preprocessor.sequence_length == 64  # the model's positions
    assert [w.numpy().tolist() for w in classifier.backbone.weights] == [
        w.numpy().tolist() for w in written.backbone.weights]
    with pytest.raises(ValueError, match="holds a BertForMaskedLM: a new KcBertTextClassifier head on its encoder"):
        keras_hub.models.TextClassifier.from_preset(str(tmp_path / "mlm"))


def test_directories_written_before_task_records_had_options_still_load(vocab, tmp_path):
    """task.json with top-level ``columns`` (finetune before this change) and the record kept in
    metrics.json (earlier still) load with KerasHub and predict."""
    write_model_directory(tmp_path / "old", vocab, "sequence_classification")
    (tmp_path / "old" / "task.json").write_text(json.dumps({
        "task": "kornli", "head": "sequence_classification", "max_seq_length": 36, "clean": True,
        "labels": ["부정", "긍정"], "columns": {"text": "a", "label": "l", "text_pair": "b"}, "qa": None,
        "options": {}}))
    old = keras_hub.models.TextClassifier.from_preset(str(tmp_path / "old"))
    assert old.preprocessor.sequence_length == 36 and old.record.segments == 2
    assert old.predict((["좋아요"], ["싫어요"]), verbose=0).shape == (1, 2)
    write_model_directory(tmp_path / "older", vocab, "sequence_classification")
    (tmp_path / "older" / "metrics.json").write_text(json.dumps({
        "task": "nsmc", "labels": ["부정", "긍정"], "clean": True, "columns": {"text": "document", "label": "label",
                                                                             "text_pair": None},
        "settings": {"max_seq_length": 20}, "best": {"accuracy": 0.5}}))
    assert keras_hub.models.TextClassifier.from_preset(str(tmp_path / "older")).preprocessor.sequence_length == 20


def test_configs_round_trip_and_a_keras_archive_keeps_the_vocab(vocab, tmp_path):
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor
    from kcbert_tf.model.tokenizer import KcBertTokenizer

    preprocessor = KcBertTextClassifierPreprocessor(KcBertTokenizer(vocabulary=vocab), sequence_length=32, clean=False)
    restored = KcBertTextClassifierPreprocessor.from_config(preprocessor.get_config())
    assert (restored.sequence_length, restored.clean) == (32, False)
    model = build_model(tiny_config(len(vocab)).with_labels(["부정", "긍정"]), preprocessor=preprocessor)
    randomize(model, 4)
    assert model.get_config()["labels"] == ["부정", "긍정"]
    texts = ["이 영화 최고 ㅋㅋ", "별로였다"]
    model.save(str(tmp_path / "classifier.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "classifier.keras"))
    assert loaded.labels == ["부정", "긍정"] and loaded.preprocessor.tokenizer.get_vocabulary() == vocab
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), model.predict(texts, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_a_finetuned_directory_predicts_in_keras_what_kcbert_tf_predict_prints(dropout_free_model_dir, tmp_path):
    """The done-when of the Keras library: ``finetune``'s directory, loaded by KerasHub's own
    ``TextClassifier.from_preset``, gives on raw strings the probabilities ``kcbert-tf predict``
    prints (four decimals: within 1e-4)."""
    from test_finetuning import slice_of

    nsmc = shared_file("nsmc/train.txt")
    train, evaluation = slice_of(nsmc, tmp_path / "train.tsv", 1, 256), slice_of(nsmc, tmp_path / "eval.tsv", 257, 64)
    new = slice_of(nsmc, tmp_path / "new.tsv", 400, 200)
    out = tmp_path / "nsmc"
    assert cli(["finetune", "--task", "nsmc", "--train", str(train), "--eval", str(evaluation), "--init",
                str(dropout_free_model_dir), "--output", str(out), "--epochs", "1", "--batch-size", "32",
                "--learning-rate", "1e-3"]) == 0
    assert cli(["predict", "--model", str(out), "--input", str(new), "--output", str(tmp_path / "p.tsv")]) == 0
    header, *rows = [line.split("\t") for line in (tmp_path / "p.tsv").read_text(encoding="utf-8").splitlines()]
    printed = np.array([[float(row[header.index(f"p_{label}")]) for label in ("0", "1")] for row in rows if row[-1]])
    texts = [row[header.index("document")] for row in rows if row[-1]]

    classifier = keras_hub.models.TextClassifier.from_preset(str(out))
    logits = classifier.predict(texts, verbose=0)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    difference = float(np.abs(probabilities - printed).max())
    print(f"max |from_preset(...).predict - kcbert-tf predict| = {difference:.2e} over {len(texts)} reviews")
    assert difference <= 1e-4 and len(texts) > 150
    assert [classifier.labels[i] for i in probabilities.argmax(-1)] == [
        row[header.index("predicted")] for row in rows if row[-1]]


FIT_ON_STRINGS = textwrap.dedent(
    """
    import json, sys
    replicas, model_dir, data, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    from kcbert_tf.training.strategy import resolve_strategy
    info = resolve_strategy(cpu_replicas=replicas)  # splits the CPU before TensorFlow sets it up
    import keras, keras_hub, numpy as np
    import kcbert_tf  # noqa: F401 - registers kcbert_tf's model directories with KerasHub
    rows = [line.split("\\t") for line in open(data, encoding="utf-8").read().split("\\n")[1:] if line.count("\\t") == 2]
    texts, labels = [row[1] for row in rows][:96], [int(row[2]) for row in rows][:96]
    keras.utils.set_random_seed(0)
    with info.strategy.scope():
        classifier = keras_hub.models.TextClassifier.from_preset(model_dir, num_classes=2)
        classifier.compile()  # KcBERT's AdamW, the summed gradients clipped after the all-reduce
    classifier.fit(x=texts, y=labels, batch_size=16, epochs=2, verbose=0)
    np.savez(out, *[w.numpy() for w in classifier.weights])
    print(json.dumps({"replicas": info.num_replicas}))
    """
)


@pytest.mark.slow
def test_fit_on_raw_strings_trains_alike_on_one_and_two_replicas(dropout_free_model_dir, tmp_path):
    """A Keras user's fine-tuning (``from_preset``, ``fit(x=texts, y=labels)``) under
    MirroredStrategy: with dropout 0 and the same seed, two replicas end at one replica's weights."""
    data = shared_file("nsmc/train.txt")
    weights = {}
    for replicas in (1, 2):
        result = subprocess.run(
            [sys.executable, "-c", FIT_ON_STRINGS, str(replicas), str(dropout_free_model_dir), str(data),
             str(tmp_path / f"w{replicas}.npz")],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads(result.stdout.strip().splitlines()[-1])["replicas"] == replicas
        loaded = np.load(tmp_path / f"w{replicas}.npz")
        weights[replicas] = [loaded[key] for key in sorted(loaded.files, key=lambda name: int(name.split("_")[1]))]
    start = json.loads((dropout_free_model_dir / "config.json").read_text())
    assert start["hidden_dropout_prob"] == 0.0
    differ = max(float(np.abs(a - b).max()) for a, b in zip(weights[1], weights[2]))
    assert differ < 1e-5, differ


def test_the_masked_lm_predicts_at_the_masks_of_raw_text(vocab, reference, tmp_path):
    """``predict`` on strings with [MASK]: the logits at those masks, as the model gives them on
    transformers' ids with the mask positions found by hand."""
    from kcbert_tf.model.masked_lm import KcBertMaskedLM

    written = write_model_directory(tmp_path / "mlm", vocab, "masked_lm", seed=2)
    masked_lm = KcBertMaskedLM.from_preset(str(tmp_path / "mlm"))
    texts = ["오늘 경기 진짜 [MASK] 였다", "[MASK] 배우 연기 [MASK] 좋았다"]
    logits = masked_lm.predict(texts, verbose=0)
    ids = reference(texts, padding="max_length", max_length=64, return_tensors="np")
    positions = [np.flatnonzero(row == 4) for row in ids["input_ids"]]
    inputs = {"token_ids": ids["input_ids"].astype("int32"), "segment_ids": ids["token_type_ids"].astype("int32"),
              "padding_mask": ids["attention_mask"].astype("int32"),
              "mask_positions": np.array([np.pad(p, (0, 2 - len(p))) for p in positions], "int32")}
    want = written.predict(inputs, verbose=0)
    for row, found in enumerate(positions):
        np.testing.assert_allclose(logits[row, : len(found)], want[row, : len(found)], atol=1e-4)
    top = masked_lm.fill_mask(texts, top_k=2)
    assert [len(answers) for answers in top] == [1, 2]
    assert top[0][0][0][0] == vocab[int(want[0, 0].argmax())]
