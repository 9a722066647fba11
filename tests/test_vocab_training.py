"""`kcbert-tf train-tokenizer`: the vocab's structure against the tokenizers library's own
normalizer and pre-tokenizer, loading and UNK rate against transformers, reproducibility of the
sample and the vocab, the CLI on preprocess records, bad input."""

from __future__ import annotations

import collections
import contextlib
import io
import json
import math
import pathlib

import pytest

from kcbert_tf.text.cleaning import clean
from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.text.records import text_example
from kcbert_tf.training.vocab_training import sample_texts, train_tokenizer, train_vocab

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEMO = pathlib.Path(__file__).resolve().parents[1] / "kcbert_tf" / "resources" / "demo_comments.txt"
ERROR = "kcbert-tf train-tokenizer: error:"


# --- independent references -------------------------------------------------------------------


def reference_word_counts(texts: list[str]) -> collections.Counter:
    """The words the WordPiece trainer counts: Hugging Face's BERT normalizer (cased, CJK split,
    no accent stripping) and pre-tokenizer, applied directly."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: collections.Counter = collections.Counter()
    for text in texts:
        words = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in words)
    return counts


def auto_tokenizer(directory: pathlib.Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)


def reference_unk(tokenizer, texts: list[str]) -> tuple[int, int]:
    """([UNK] tokens, all tokens) of ``texts`` under a transformers tokenizer."""
    unknown = total = 0
    for start in range(0, len(texts), 2_000):
        for ids in tokenizer(texts[start : start + 2_000], add_special_tokens=False)["input_ids"]:
            total += len(ids)
            unknown += ids.count(tokenizer.unk_token_id)
    return unknown, total


def read_vocab(directory: pathlib.Path) -> list[str]:
    return (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]


def train_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli(["train-tokenizer", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- the shared real comments --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cleaned_comments(news_comments, tmp_path_factory) -> tuple[pathlib.Path, list[str]]:
    texts = [clean(line) for line in news_comments.read_text(encoding="utf-8").splitlines()]
    texts = [text for text in texts if text]
    path = tmp_path_factory.mktemp("comments") / "cleaned.txt"
    path.write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")
    return path, texts


@pytest.fixture(scope="module")
def small_vocab(cleaned_comments, tmp_path_factory):
    """The command on the cleaned comments with a small vocab: (dir, stats, stdout)."""
    path, _ = cleaned_comments
    out = tmp_path_factory.mktemp("vocab") / "kcbert-small"
    stdout = io.StringIO()  # A module-scoped fixture cannot use capsys.
    with contextlib.redirect_stdout(stdout):
        code = cli(
            ["train-tokenizer", "--input", str(path), "--output", str(out),
             "--vocab-size", "3000", "--limit-alphabet", "1000"]
        )
    assert code == 0
    stats = json.loads((out / "vocab_stats.json").read_text(encoding="utf-8"))
    return out, stats, stdout.getvalue()


def test_vocab_has_specials_then_the_alphabet_then_pieces(cleaned_comments, small_vocab):
    _, texts = cleaned_comments
    directory, stats, _ = small_vocab
    vocab = read_vocab(directory)
    assert len(vocab) == len(set(vocab)) == stats["vocab_size"] == 3000
    assert vocab[:5] == SPECIALS
    assert not any("unused" in token for token in vocab)

    alphabet = []
    for token in vocab[5:]:
        if len(token) != 1:
            break
        alphabet.append(token)
    assert alphabet == sorted(alphabet)  # the trainer's code-point order

    words = reference_word_counts(texts)
    char_counts: collections.Counter = collections.Counter()
    inner_chars = set()
    for word, count in words.items():
        for char in word:
            char_counts[char] += count
        inner_chars.update(word[1:])
    limit = 1000
    assert len(char_counts) > limit  # the limit binds on this corpus
    assert len(alphabet) == stats["alphabet_size"] == limit
    cutoff = sorted(char_counts.values(), reverse=True)[limit - 1]
    assert all(char_counts[char] >= cutoff for char in alphabet)  # only the most frequent ...
    assert {char for char, n in char_counts.items() if n > cutoff} <= set(alphabet)  # ... all

    # Then a "##c" for each alphabet character that occurs inside a word, then merges.
    continuations = vocab[5 + len(alphabet) : 5 + len(alphabet) + stats["continuation_characters"]]
    assert {token[2:] for token in continuations} == inner_chars & set(alphabet)
    assert all(token.startswith("##") and len(token) == 3 for token in continuations)
    for token in vocab[5:]:
        body = token[2:] if token.startswith("##") else token
        assert body, f"{token!r} has nothing after ##"
        assert set(body) <= set(alphabet), token  # every piece is spelt in the alphabet

    # Cased: the input's uppercase ASCII letters stay letters of their own.
    upper_in_input = {char for char in alphabet if char.isascii() and char.isupper()}
    assert upper_in_input and {char.lower() for char in upper_in_input} & set(alphabet)


def test_vocab_is_what_the_hugging_face_trainer_gives(cleaned_comments, small_vocab):
    """KcBERT's own recipe, run plainly, agrees up to its run-to-run tie-breaking (which moves
    about 10-25 of 3,000 tokens between two runs of it)."""
    from tokenizers import BertWordPieceTokenizer

    _, texts = cleaned_comments
    tokenizer = BertWordPieceTokenizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False,
        wordpieces_prefix="##",
    )
    tokenizer.train_from_iterator(
        texts, vocab_size=3000, limit_alphabet=1000, min_frequency=2, special_tokens=SPECIALS,
        show_progress=False,
    )
    reference = tokenizer.get_vocab()
    vocab = read_vocab(small_vocab[0])
    assert len(reference) == len(vocab)
    assert len(set(reference) & set(vocab)) >= 0.99 * len(vocab)
    assert sorted(reference, key=reference.get)[:5] == SPECIALS


def test_vocab_loads_offline_in_transformers_and_the_unk_rate_is_theirs(
    cleaned_comments, small_vocab, monkeypatch
):
    _, texts = cleaned_comments
    directory, stats, stdout = small_vocab
    vocab = read_vocab(directory)
    tokenizer = auto_tokenizer(directory, monkeypatch)
    assert tokenizer.do_lower_case is False
    ids = tokenizer(texts[:200], add_special_tokens=False)["input_ids"]
    flat = [token_id for row in ids for token_id in row]
    assert flat and all(0 <= token_id < len(vocab) for token_id in flat)
    assert sum(token_id != tokenizer.unk_token_id for token_id in flat) > 0.9 * len(flat)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4]) == SPECIALS

    unknown, total = reference_unk(tokenizer, texts)
    assert (stats["unk_tokens"], stats["total_tokens"]) == (unknown, total)
    assert stats["unk_rate"] == pytest.approx(unknown / total)
    assert stats["texts_read"] == stats["texts_sampled"] == stats["unk_texts"] == len(texts)
    assert f"{unknown:,} [UNK] of {total:,} tokens" in stdout


def test_the_sample_is_a_seeded_hash_sample(cleaned_comments):
    _, texts = cleaned_comments
    n, rate = len(texts), 0.5
    first = list(sample_texts(texts, rate, seed=0))
    assert first == list(sample_texts(texts, rate, seed=0))
    second = list(sample_texts(texts, rate, seed=1))
    assert first != second
    tolerance = 5 * math.sqrt(n * rate * (1 - rate))
    assert abs(len(first) - rate * n) < tolerance and abs(len(second) - rate * n) < tolerance
    # Two seeds draw independent samples: they overlap in about rate² of the texts.
    # (A text's fate depends only on the text, so count distinct texts here.)
    distinct = len(set(texts))
    both = len(set(first) & set(second))
    assert abs(both - rate * rate * distinct) < 5 * math.sqrt(distinct * rate**2 * (1 - rate**2))
    tenth = list(sample_texts(texts, 0.1, seed=0))
    assert abs(len(tenth) - 0.1 * n) < 5 * math.sqrt(n * 0.1 * 0.9)
    assert list(sample_texts(texts, 1.0, seed=7)) == texts


def test_same_seed_same_vocab_txt(cleaned_comments, tmp_path, capsys):
    path, texts = cleaned_comments
    common = ["--input", str(path), "--vocab-size", "3000", "--limit-alphabet", "1000",
              "--sample-rate", "0.5"]
    for name, seed in [("a", "0"), ("b", "0"), ("c", "1")]:
        code, _, err = train_cli(capsys, *common, "--seed", seed, "--output", str(tmp_path / name))
        assert code == 0, err
    vocab_a = (tmp_path / "a" / "vocab.txt").read_bytes()
    assert vocab_a == (tmp_path / "b" / "vocab.txt").read_bytes()
    assert vocab_a != (tmp_path / "c" / "vocab.txt").read_bytes()
    stats = [json.loads((tmp_path / name / "vocab_stats.json").read_text()) for name in "abc"]
    assert stats[0]["texts_sampled"] == len(list(sample_texts(texts, 0.5, seed=0)))
    assert stats[2]["texts_sampled"] == len(list(sample_texts(texts, 0.5, seed=1)))
    # The trainer alone breaks ties differently from run to run, even in one process.
    sample = list(sample_texts(texts, 0.5, seed=0))
    assert train_vocab(sample, 3000, 1000, 2) == train_vocab(sample, 3000, 1000, 2)


# --- the command on preprocess records (no shared data needed) ----------------------------------


def demo_texts() -> list[str]:
    texts = [clean(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    return list(dict.fromkeys(text for text in texts if len(text) >= 10))


def write_records(directory: pathlib.Path, texts: list[str], shards: int = 2) -> None:
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        name = directory / f"comments-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(name)) as writer:
            for text in texts[shard::shards]:
                writer.write(text_example(text))


def test_cli_end_to_end_on_preprocess_records(tmp_path, capsys, monkeypatch):
    texts = demo_texts()
    write_records(tmp_path / "cleaned", texts)
    out = tmp_path / "vocab"
    code, stdout, err = train_cli(
        capsys, "--input", str(tmp_path / "cleaned" / "*.tfrecord"), "--output", str(out),
        "--vocab-size", "5000", "--limit-alphabet", "800",
    )
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == [
        "special_tokens_map.json", "tokenizer_config.json", "vocab.txt", "vocab_stats.json"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cleaned", "vocab"]  # no temp dirs
    stats = json.loads((out / "vocab_stats.json").read_text())
    vocab = read_vocab(out)
    assert stats["texts_read"] == stats["texts_sampled"] == len(texts)
    assert len(vocab) == stats["vocab_size"] < 5000  # a small corpus runs out of frequent pairs
    assert "below --vocab-size 5,000" in stdout and f"texts read:    {len(texts):,}" in stdout
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is False and config["tokenizer_class"] == "BertTokenizer"
    tokenizer = auto_tokenizer(out, monkeypatch)
    assert len(tokenizer) == len(vocab)
    assert (stats["unk_tokens"], stats["total_tokens"]) == reference_unk(tokenizer, texts)


def test_python_call_writes_specials_first_and_counts_the_texts(tmp_path, capsys):
    """``train_tokenizer`` called from Python (no argv): vocab.txt starts with the special tokens,
    and the stats count the texts as a plain reading of the file does."""
    texts = demo_texts()
    source = tmp_path / "demo.txt"
    source.write_text("\n".join(texts[:40] + ["   "] + texts[40:]) + "\n", encoding="utf-8")
    out = tmp_path / "vocab"
    for bad, flag in (({"sample_rate": 0.0}, "--sample-rate"), ({"vocab_size": 5}, "--vocab-size")):
        with pytest.raises(UserError, match=f"^{flag} must be"):
            train_tokenizer(str(source), str(out), **bad)
    assert not out.exists()  # refused before anything is read or written

    stats = train_tokenizer(str(source), str(out), vocab_size=2000, limit_alphabet=500, seed=3)
    vocab = read_vocab(out)
    assert vocab[:5] == SPECIALS and len(vocab) == len(set(vocab)) == stats["vocab_size"] <= 2000
    lines = source.read_text(encoding="utf-8").splitlines()
    blank = sum(not line.strip() for line in lines)
    assert (stats["texts_read"], stats["blank_texts"]) == (len(lines), blank) == (len(texts) + 1, 1)
    assert stats["texts_sampled"] == len(texts)  # sample rate 1: every non-blank text
    assert (stats["vocab_size_requested"], stats["limit_alphabet"], stats["seed"]) == (2000, 500, 3)
    assert stats == json.loads((out / "vocab_stats.json").read_text(encoding="utf-8"))
    assert f"texts read:    {len(lines):,} (1 blank, skipped)" in capsys.readouterr().out


def test_overwrite_replaces_only_when_asked(tmp_path, capsys):
    source = tmp_path / "demo.txt"
    source.write_text("\n".join(demo_texts()) + "\n", encoding="utf-8")
    out = tmp_path / "vocab"
    out.mkdir()
    (out / "vocab.txt").write_text("precious\n")
    args = ["--input", str(source), "--output", str(out), "--vocab-size", "3000"]
    code, _, err = train_cli(capsys, *args)
    assert code == 2 and err.startswith(ERROR)
    assert f"--output {out}" in err and "--overwrite" in err
    assert [path.name for path in out.iterdir()] == ["vocab.txt"]
    assert (out / "vocab.txt").read_text() == "precious\n"

    code, _, err = train_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert read_vocab(out)[:5] == SPECIALS and (out / "vocab_stats.json").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["demo.txt", "vocab"]


BAD_INPUTS = {  # case: (options replaced or added, what the message must say; {tmp} = tmp_path)
    "missing input": (["--input", "{tmp}/nowhere/*.txt"], "--input {tmp}/nowhere/*.txt: no such"),
    "rate zero": (["--sample-rate", "0"], "--sample-rate"),
    "rate above one": (["--sample-rate", "1.5"], "--sample-rate"),
    "rate negative": (["--sample-rate", "-0.1"], "--sample-rate"),
    "vocab too small": (["--vocab-size", "300"], "--vocab-size 300 is too small"),
    "nothing sampled": (["--sample-rate", "1e-9"], "--sample-rate 1e-09 kept none"),
    "empty input": (["--input", "{tmp}/empty.txt"], "--input {tmp}/empty.txt holds no text"),
    "blank input": (["--input", "{tmp}/blank.txt"], "--input {tmp}/blank.txt holds no text"),
    "a directory": (["--input", "{tmp}/records"], "--input {tmp}/records is a directory"),
    "not utf-8": (["--input", "{tmp}/latin1.txt"], "--input {tmp}/latin1.txt: text 2 is not UTF-8"),
    "corrupt records": (["--input", "{tmp}/bad.tfrecord"], "--input {tmp}/bad.tfrecord: cannot"),
    "output is a file": (["--output", "{tmp}/demo.txt"], "--output {tmp}/demo.txt is a file"),
    "remote output": (["--output", "gs://bucket/vocab"], "--output gs://bucket/vocab: give a"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_naming_the_file_or_flag(tmp_path, capsys, monkeypatch, case):
    extra, needle = BAD_INPUTS[case]
    monkeypatch.chdir(tmp_path)  # A relative path written by mistake would show up below.
    (tmp_path / "demo.txt").write_text("\n".join(demo_texts()) + "\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n  \n\t\n")
    (tmp_path / "latin1.txt").write_bytes("좋아요 정말\n".encode() + "café crème\n".encode("latin-1"))
    write_records(tmp_path / "records", demo_texts()[:5], shards=1)
    record = (tmp_path / "records" / "comments-00000-of-00001.tfrecord").read_bytes()
    (tmp_path / "bad.tfrecord").write_bytes(record[:-7])
    before = sorted(path.name for path in tmp_path.iterdir())
    args = {"--input": str(tmp_path / "demo.txt"), "--output": str(tmp_path / "out")}
    rest: list[str] = []
    for flag, value in zip(extra[::2], extra[1::2]):
        value = value.format(tmp=tmp_path)
        if flag in args:
            args[flag] = value
        else:
            rest += [flag, value]
    argv = [item for pair in args.items() for item in pair] + ["--limit-alphabet", "1000", *rest]
    code, _, err = train_cli(capsys, *argv)
    assert code == 2, case
    assert ERROR in err and needle.format(tmp=tmp_path) in err, err
    assert "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing written
