"""Train a cased WordPiece vocabulary the way KcBERT did: ``kcbert-tf train-tokenizer``.

KcBERT trained its 30,000-token ``vocab.txt`` with Hugging Face tokenizers'
``BertWordPieceTokenizer`` (cased, no accent stripping, ``##`` continuations, an alphabet of at most
4,000 characters, pairs seen at least twice) on a 1/10 sample of its cleaned comments.  This
module does the same, with two additions that make the result reproducible:

- the sample is drawn by a keyed hash of each text (:func:`sample_texts`), so the same ``--seed``
  picks the same texts on any machine;
- the trainer breaks ties (between characters at the alphabet cut-off and between equally frequent
  merges) in hash-map order, which changes from run to run.  :func:`train_vocab` fixes the
  alphabet (most frequent characters, ties by code point) and the ids of the ``##`` continuation
  characters (by code point) before the merges, so the same texts give the same ``vocab.txt``.

The directory written (:func:`kcbert_tf.text.vocab.write_tokenizer_dir`) loads with
``transformers.AutoTokenizer.from_pretrained(DIR)`` and
:func:`kcbert_tf.text.tokenizer.load_tokenizer`.  :func:`train_tokenizer` is the Python call (it
returns the stats of ``vocab_stats.json``); :func:`run` parses the command's flags into it.

The command and the same training from Python::

    kcbert-tf train-tokenizer --input 'cleaned/*.tfrecord' --output vocab/ --sample-rate 0.1

    from kcbert_tf.training.vocab_training import train_tokenizer
    stats = train_tokenizer("cleaned/*.tfrecord", "vocab/", sample_rate=0.1)

>>> texts = ["ㅋㅋ 진짜 웃기다", "진짜 웃기네 ㅋㅋ", "웃기다 진짜로"]
>>> vocab = train_vocab(texts, vocab_size=30, limit_alphabet=100, min_frequency=2)
>>> vocab[:5], vocab[5:13]
(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], ['ㅋ', '기', '네', '다', '로', '웃', '진', '짜'])
>>> vocab[13:]  # "##" continuations, then merges; no pair left occurs twice: 23 tokens, not 30
['##ㅋ', '##기', '##네', '##다', '##로', '##짜', '웃기', '진짜', 'ㅋㅋ', '웃기다']
>>> [in_sample(text, rate=0.5, seed=0) for text in texts]  # the same on every machine
[True, False, True]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import pathlib
import sys
import time
from typing import Callable, Iterable, Iterator, Sequence

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.text.model_inputs import KCBERT_MAX_POSITIONS
from kcbert_tf.output_dir import check_output_dir, staged_output
from kcbert_tf.text.records import read_texts
from kcbert_tf.text.tokenizer import load_tokenizer
from kcbert_tf.text.vocab import CONTINUATION_PREFIX, SPECIAL_TOKENS, write_tokenizer_dir

__all__ = [
    "STATS_FILE",
    "VocabSizeError",
    "UnkStats",
    "in_sample",
    "sample_texts",
    "compute_alphabet",
    "train_vocab",
    "unk_rate",
    "train_tokenizer",
    "build_arg_parser",
    "run",
]

PROG = "kcbert-tf train-tokenizer"

#: The training report written next to ``vocab.txt``.
STATS_FILE = "vocab_stats.json"

#: Texts encoded per call when measuring the UNK rate.
ENCODE_BATCH = 2_000

#: A progress line goes to stderr every this many texts read or encoded.
PROGRESS_EVERY = 100_000


class VocabSizeError(UserError):
    """``vocab_size`` cannot hold the special tokens, the alphabet and its ``##`` continuations."""

    def __init__(self, vocab_size: int, alphabet: int, continuations: int):
        self.vocab_size, self.alphabet, self.continuations = vocab_size, alphabet, continuations
        self.needed = len(SPECIAL_TOKENS) + alphabet + continuations
        super().__init__(
            f"a vocab size of {vocab_size:,} is too small for these texts: the "
            f"{len(SPECIAL_TOKENS)} special tokens, the {alphabet:,}-character alphabet and the "
            f"{continuations:,} '##' continuations of those characters alone take {self.needed:,} "
            f"tokens; give a vocab size of at least {self.needed:,} or a smaller alphabet limit"
        )


# ---------------------------------------------------------------------------------------------
# Sampling


def in_sample(text: str, rate: float, seed: int) -> bool:
    """Whether ``text`` belongs to the ``rate`` sample of ``seed``: a keyed hash of the text under
    ``rate``, so the decision depends on nothing but (seed, text) and is the same everywhere.

    (BLAKE2b rather than CRC-32: CRC is linear, so two seeds' CRCs of texts of one length differ by
    a fixed pattern and their samples would be identical or complementary per length.)
    """
    digest = hashlib.blake2b(f"{seed}\t{text}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def sample_texts(texts: Iterable[str], rate: float, seed: int) -> Iterator[str]:
    """The texts :func:`in_sample` keeps, in their order; ``rate`` 1 keeps every text."""
    if not 0 < rate <= 1:
        raise ValueError(f"the sample rate must be in (0, 1], got {rate}")
    if rate == 1:
        yield from texts
        return
    for text in texts:
        if in_sample(text, rate, seed):
            yield text


# ---------------------------------------------------------------------------------------------
# Training


def _new_tokenizer():
    """KcBERT's tokenizer settings: cased, CJK characters split, no accent stripping, ``##``."""
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=False,
        lowercase=False,
        wordpieces_prefix=CONTINUATION_PREFIX,
    )


def compute_alphabet(texts: Iterable[str], limit_alphabet: int) -> list[str]:
    """The trainer's alphabet, with ties made deterministic: the ``limit_alphabet`` most frequent
    characters of the words the trainer sees (what the BERT normalizer keeps, whitespace aside),
    ties broken by code point, returned in code-point order (the order of the trainer's vocab).
    """
    counts: collections.Counter[str] = collections.Counter()
    for text in texts:
        counts.update(text)
    normalizer = _new_tokenizer()._tokenizer.normalizer
    # The normalizer works a character at a time: it drops control and format characters, turns
    # whitespace into spaces and pads CJK ideographs with spaces, which the pre-tokenizer drops.
    kept = [char for char in counts if normalizer.normalize_str(char).strip() == char]
    kept.sort(key=lambda char: (-counts[char], ord(char)))
    return sorted(kept[:limit_alphabet], key=ord)


def _train(texts: Sequence[str], **trainer_options) -> list[str]:
    tokenizer = _new_tokenizer()
    tokenizer.train_from_iterator(texts, show_progress=False, length=len(texts), **trainer_options)
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def train_vocab(
    texts: Sequence[str], vocab_size: int, limit_alphabet: int, min_frequency: int
) -> list[str]:
    """A KcBERT-style WordPiece vocab of ``texts``, as tokens in id order.

    The vocab holds ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0-4), the alphabet (single characters,
    by code point), their ``##`` continuations (by code point), then the merged pieces in the order
    the trainer made them, until ``vocab_size`` tokens or until no pair of pieces occurs
    ``min_frequency`` times (then the vocab is smaller).  Deterministic for the same texts.

    Raises :class:`VocabSizeError` when ``vocab_size`` cannot hold the specials, the alphabet and
    its continuations, and :class:`UserError` when the texts hold no character.
    """
    alphabet = compute_alphabet(texts, limit_alphabet)
    if not alphabet:
        raise UserError("the texts hold no character to train on (only whitespace)")
    fixed_alphabet = {"initial_alphabet": alphabet, "limit_alphabet": len(alphabet)}
    # Pass 1, no merges: which characters of the alphabet occur inside a word (as "##c").
    first = _train(texts, vocab_size=0, special_tokens=list(SPECIAL_TOKENS), **fixed_alphabet)
    continuations = sorted(
        (token for token in first if token.startswith(CONTINUATION_PREFIX)),
        key=lambda token: ord(token[len(CONTINUATION_PREFIX) :]),
    )
    if vocab_size < len(SPECIAL_TOKENS) + len(alphabet) + len(continuations):
        raise VocabSizeError(vocab_size, len(alphabet), len(continuations))
    # Pass 2: the trainer orders merges of equal count by the ids of their pieces, and gives the
    # "##c" ids in hash-map order.  Passed as leading "special" tokens, the alphabet and the
    # continuations get fixed ids, in the trainer's own layout (specials, alphabet, "##c").
    head = list(SPECIAL_TOKENS) + alphabet + continuations
    trained = _train(
        texts,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=head,
        **fixed_alphabet,
    )
    known = set(head)
    merged = [token for token in trained if token not in known]
    if len(trained) != len(head) + len(merged):  # The trainer changed what these rely on.
        raise RuntimeError("the trained vocab lacks some of the alphabet or its continuations")
    return head + merged


# ---------------------------------------------------------------------------------------------
# Writing and measuring


def _write_json(path: pathlib.Path, value: dict) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class UnkStats:
    """How many of the tokens of some texts are ``[UNK]``."""

    texts: int
    tokens: int
    unknown: int

    @property
    def rate(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0


def unk_rate(
    encode: Callable[[list[str]], list[list[int]]],
    texts: Iterable[str],
    unk_id: int = SPECIAL_TOKENS.index("[UNK]"),
    batch_size: int = ENCODE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> UnkStats:
    """[UNK] tokens / all tokens of ``texts`` under ``encode`` (a batch of texts → ids without
    special tokens, e.g. ``load_tokenizer(DIR).encode``), encoding ``batch_size`` texts at a time;
    ``progress`` is called with the number of texts done after each batch.
    """
    count = tokens = unknown = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal count, tokens, unknown
        for ids in encode(batch):
            tokens += len(ids)
            unknown += sum(1 for token_id in ids if token_id == unk_id)
        count += len(batch)
        batch.clear()
        if progress is not None:
            progress(count)

    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return UnkStats(texts=count, tokens=tokens, unknown=unknown)


# ---------------------------------------------------------------------------------------------
# The command


#: The smallest setting of each option (a vocab needs the specials and one more token).
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + 1
MIN_LIMIT_ALPHABET = 1
MIN_MIN_FREQUENCY = 0
MIN_MODEL_MAX_LENGTH = 2


def _check_settings(
    vocab_size: int,
    limit_alphabet: int,
    min_frequency: int,
    sample_rate: float,
    model_max_length: int,
) -> None:
    """The checks the command's flag types make, for a Python caller; a :class:`UserError` that
    names the flag, as the command would."""
    if not 0 < sample_rate <= 1:
        raise UserError(f"--sample-rate must be in (0, 1], got {sample_rate} (0.1 keeps a tenth)")
    for flag, value, minimum in (
        ("--vocab-size", vocab_size, MIN_VOCAB_SIZE),
        ("--limit-alphabet", limit_alphabet, MIN_LIMIT_ALPHABET),
        ("--min-frequency", min_frequency, MIN_MIN_FREQUENCY),
        ("--model-max-length", model_max_length, MIN_MODEL_MAX_LENGTH),
    ):
        if value < minimum:
            raise UserError(f"{flag} must be at least {minimum}, got {value}")


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < rate <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value} (0.1 keeps a tenth)")
    return rate


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a cased WordPiece vocab.txt the way KcBERT did (HF tokenizers).",
    )
    parser.add_argument(
        "--input", required=True,
        help="preprocess TFRecords (*.tfrecord*) or text files (a text a line): a path or glob",
    )
    parser.add_argument("--output", required=True, help="the local directory to write")
    parser.add_argument(
        "--vocab-size", type=_int_at_least(MIN_VOCAB_SIZE), default=30_000,
        help="tokens in the vocab, specials included (default 30000)",
    )
    parser.add_argument(
        "--limit-alphabet", type=_int_at_least(MIN_LIMIT_ALPHABET), default=4_000,
        help="keep at most this many single characters, the most frequent (default 4000)",
    )
    parser.add_argument(
        "--min-frequency", type=_int_at_least(MIN_MIN_FREQUENCY), default=2,
        help="merge a pair of pieces only if it occurs at least this often (default 2)",
    )
    parser.add_argument(
        "--sample-rate", type=_rate, default=1.0,
        help="train on this fraction of the texts (KcBERT: 0.1; default 1: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="which sample (default 0)")
    parser.add_argument(
        "--model-max-length", type=_int_at_least(MIN_MODEL_MAX_LENGTH),
        default=KCBERT_MAX_POSITIONS,
        help="the tokenizer's model_max_length: the model's max_position_embeddings "
        f"(default {KCBERT_MAX_POSITIONS}, KcBERT's)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --output if it exists and is not empty"
    )
    return parser


class _Progress:
    """A line on stderr every ``every`` texts: long inputs show they are moving."""

    def __init__(self, label: str, every: int = PROGRESS_EVERY):
        self.label, self.every, self.next = label, every, every

    def __call__(self, done: int) -> None:
        if done >= self.next:
            print(f"  {self.label} {done:,} texts", file=sys.stderr, flush=True)
            self.next = (done // self.every + 1) * self.every


def _read_input(pattern: str) -> Iterator[str]:
    """:func:`kcbert_tf.text.records.read_texts`, with errors turned into messages naming the input."""
    import tensorflow as tf


    if tf.io.gfile.isdir(pattern):
        example = pattern.rstrip("/") + "/*.tfrecord"
        raise UserError(f"--input {pattern} is a directory; give its files: '{example}'")
    done = 0
    try:
        for text in read_texts(pattern):
            done += 1
            yield text
    except FileNotFoundError:
        message = f"--input {pattern}: no such file (check the path or glob)"
        raise UserError(message) from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"--input {pattern}: text {done + 1:,} is not UTF-8 ({error.reason}); run "
            "`kcbert-tf preprocess` on it first, which sets undecodable lines aside"
        ) from None
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", None) or str(error)
        raise UserError(
            f"--input {pattern}: cannot read record {done + 1:,} ({message}); give complete "
            "`kcbert-tf preprocess` records or text files"
        ) from None


def _size_message(error: VocabSizeError, vocab_size: int, limit_alphabet: int) -> str:
    return (
        f"--vocab-size {vocab_size} is too small for this sample: the "
        f"{len(SPECIAL_TOKENS)} special tokens, the {error.alphabet:,}-character alphabet "
        f"(--limit-alphabet {limit_alphabet}) and the {error.continuations:,} '##' "
        f"continuations of those characters alone take {error.needed:,} tokens; pass "
        f"--vocab-size {error.needed} or more, or a smaller --limit-alphabet"
    )


def train_tokenizer(
    input: str,
    output: str,
    *,
    vocab_size: int = 30_000,
    limit_alphabet: int = 4_000,
    min_frequency: int = 2,
    sample_rate: float = 1.0,
    seed: int = 0,
    model_max_length: int = KCBERT_MAX_POSITIONS,
    overwrite: bool = False,
) -> dict:
    """Train a KcBERT-style WordPiece vocab on the texts of ``input`` and write the tokenizer
    directory ``output``; return the stats (also in ``OUTPUT/vocab_stats.json``).

    ``input``: a path or glob of ``preprocess`` TFRecords (``*.tfrecord*``) or text files (a text
    a line); ``output``: a local directory (``overwrite`` replaces one that is not empty).  The
    vocab (:func:`train_vocab`) has at most ``vocab_size`` tokens, an alphabet of at most
    ``limit_alphabet`` characters and pieces seen ``min_frequency`` times, learnt from the
    ``sample_rate`` sample of ``seed`` (:func:`sample_texts`) of the non-blank texts; the UNK rate
    is then measured on every input text.  ``model_max_length`` goes to ``tokenizer_config.json``.
    Raises :class:`UserError` on a bad setting, input or output, or a vocab size too small for the
    alphabet.
    """
    _check_settings(vocab_size, limit_alphabet, min_frequency, sample_rate, model_max_length)
    output_dir = check_output_dir(output, overwrite)
    started = time.monotonic()

    print(f"reading {input} (sample rate {sample_rate}, seed {seed})", flush=True)
    read = blank = 0
    progress = _Progress("read")

    def non_blank() -> Iterator[str]:
        nonlocal read, blank
        for text in _read_input(input):
            read += 1
            progress(read)
            if text.strip():
                yield text
            else:
                blank += 1

    sample = list(sample_texts(non_blank(), sample_rate, seed))
    if not sample:
        if read == blank:
            what = f"only {blank:,} blank lines" if blank else "the files it matches are empty"
            raise UserError(f"--input {input} holds no text ({what})")
        raise UserError(
            f"no text left to train on: --sample-rate {sample_rate} kept none of the "
            f"{read - blank:,} texts of --input {input}; raise --sample-rate"
        )
    print(f"training on {len(sample):,} of {read - blank:,} texts", flush=True)
    try:
        tokens = train_vocab(sample, vocab_size, limit_alphabet, min_frequency)
    except VocabSizeError as error:
        raise UserError(_size_message(error, vocab_size, limit_alphabet)) from None
    alphabet = next(
        (i for i, token in enumerate(tokens[len(SPECIAL_TOKENS) :]) if len(token) != 1),
        len(tokens) - len(SPECIAL_TOKENS),
    )
    continuations = sum(
        1 for token in tokens if token.startswith(CONTINUATION_PREFIX) and len(token) == 3
    )
    trained_s = time.monotonic() - started

    try:
        with staged_output(output_dir) as staged:
            write_tokenizer_dir(tokens, staged, model_max_length)
            print(f"measuring the UNK rate on all {read:,} input texts", flush=True)
            measured = unk_rate(
                load_tokenizer(staged).encode, _read_input(input), progress=_Progress("encoded")
            )
            stats = {
                "input": input,
                "texts_read": read,
                "blank_texts": blank,
                "texts_sampled": len(sample),
                "sample_rate": sample_rate,
                "seed": seed,
                "vocab_size_requested": vocab_size,
                "vocab_size": len(tokens),
                "alphabet_size": alphabet,
                "continuation_characters": continuations,
                "limit_alphabet": limit_alphabet,
                "min_frequency": min_frequency,
                "unk_texts": measured.texts,
                "unk_tokens": measured.unknown,
                "total_tokens": measured.tokens,
                "unk_rate": measured.rate,
                "read_and_train_seconds": round(trained_s, 3),
                "seconds": round(time.monotonic() - started, 3),
            }
            _write_json(staged / STATS_FILE, stats)
    except OSError as error:
        raise UserError(f"--output {output_dir}: cannot write it ({error})") from None
    print(summarize(stats, output_dir), flush=True)
    return stats


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf train-tokenizer``: the flags parsed into one :func:`train_tokenizer` call;
    return the stats."""
    return call_with_flags(train_tokenizer, build_arg_parser(), argv)


def summarize(stats: dict, output: pathlib.Path | str) -> str:
    """The console report: texts, sample, vocab size reached, UNK rate, where it went."""
    specials, alphabet = len(SPECIAL_TOKENS), stats["alphabet_size"]
    continuations = stats["continuation_characters"]
    merged = stats["vocab_size"] - specials - alphabet - continuations
    blank = f" ({stats['blank_texts']:,} blank, skipped)" if stats["blank_texts"] else ""
    lines = [
        f"texts read:    {stats['texts_read']:,}{blank}",
        f"texts sampled: {stats['texts_sampled']:,} "
        f"(rate {stats['sample_rate']}, seed {stats['seed']})",
        f"vocab:         {stats['vocab_size']:,} tokens = {specials} special + {alphabet:,} "
        f"characters + {continuations:,} '##' characters + {merged:,} merged pieces",
    ]
    if stats["vocab_size"] < stats["vocab_size_requested"]:
        lines.append(
            f"               below --vocab-size {stats['vocab_size_requested']:,}: no pair of "
            f"pieces occurs {stats['min_frequency']} times any more (a small corpus); the vocab is "
            "complete as it is"
        )
    lines += [
        f"UNK rate:      {stats['unk_rate']:.4%} ({stats['unk_tokens']:,} [UNK] of "
        f"{stats['total_tokens']:,} tokens over all {stats['unk_texts']:,} input texts)",
        f"wrote {output}/ (vocab.txt, tokenizer_config.json, special_tokens_map.json, "
        f"{STATS_FILE}) in {stats['seconds']:.1f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    run()
