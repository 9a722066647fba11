"""Benchmark: `kcbert-tf make-pretraining-data` (Beam) against the pipeline a transformers user runs.

The peer is `run_mlm.py`'s data preparation (transformers' `examples/pytorch/language-modeling`),
in one process: the fast tokenizer (`AutoTokenizer.from_pretrained` on a directory with the real
KcBERT vocab) called on batches of 1,000 texts with `return_special_tokens_mask=True`, as its
`tokenize_function` under `datasets.map(batched=True)`, then `group_texts`: every tokenized text
(its `[CLS]` and `[SEP]` included) concatenated and cut into blocks of `--max-seq-length`, the
remainder dropped.  The batches are plain Python lists here, not Arrow tables, which only makes the
peer faster than the real script.

Both read the same file: the shared real comments cleaned with `kcbert_tf.text.cleaning.clean`,
deduplicated, kept from 10 characters (what `preprocess` keeps), repeated to at least `--comments`
comments.  Ours is `beam_jobs.pretraining_data.run` (the job `make-pretraining-data` runs), from
pipeline construction to the records and stats on disk, with its default local settings (a worker
process per core from 64 MB of input).  The rate is comment tokens per second (`[CLS]`, `[SEP]`
and padding not counted) over each side's whole time, imports excluded on both sides (both are
already imported when the clock starts, so TensorFlow's and transformers' import times do not
count; our tokenizer's tracing does).

Same tokens: the comment tokens in our records (every id but `[CLS]`, `[SEP]`, `[PAD]`), as a
multiset, must equal the fast tokenizer's tokens of every comment; a mismatch fails the run.

    .venv/bin/python -m benchmarks.pretraining_data_speed [--comments 180000] [--max-seq-length 128]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.nsmc_split import COMMENTS, VOCAB, shared_data_absent  # noqa: E402

#: run_mlm.py's `datasets.map(batched=True)` batch size.
MAP_BATCH = 1000


def cleaned_comments(limit: int) -> list[str]:
    """The shared comments as `preprocess` keeps them (cleaned, >= 10 characters, each once),
    repeated to at least ``limit``."""
    from kcbert_tf.text.cleaning import MIN_CHARS, clean

    seen: dict[str, None] = {}
    for line in COMMENTS.read_text(encoding="utf-8").splitlines():
        text = clean(line)
        if len(text) >= MIN_CHARS:
            seen.setdefault(text)
    unique = list(seen)
    return unique * -(-limit // len(unique))


def tokenize_function(tokenizer, texts: list[str]) -> list[list[int]]:
    """run_mlm.py's `tokenize_function` over batches of 1,000: each text's ids, `[CLS]` and `[SEP]`
    included (its special-tokens mask is asked for, as run_mlm.py does)."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), MAP_BATCH):
        ids.extend(tokenizer(texts[start:start + MAP_BATCH], return_special_tokens_mask=True)["input_ids"])
    return ids


def group_texts(ids: list[list[int]], block_size: int) -> list[list[int]]:
    """run_mlm.py's `group_texts`: every text's ids concatenated, cut into blocks of
    ``block_size``, the remainder dropped."""
    concatenated = list(itertools.chain.from_iterable(ids))
    total = len(concatenated) // block_size * block_size
    return [concatenated[i:i + block_size] for i in range(0, total, block_size)]


def our_job(input_path: str, vocab: str, output: str, max_seq_length: int) -> dict:
    from beam_jobs.pretraining_data import run

    with contextlib.redirect_stdout(io.StringIO()):
        return run(["--input", input_path, "--vocab", vocab, "--output", output,
                    "--max-seq-length", str(max_seq_length), "--overwrite"])


def record_token_counts(output: str, max_seq_length: int, vocab_size: int, skip: set[int]) -> np.ndarray:
    """How often each id occurs in our records, the ids in ``skip`` counted as 0."""
    import tensorflow as tf

    counts = np.zeros(vocab_size, np.int64)
    files = sorted(tf.io.gfile.glob(os.path.join(output, "*.tfrecord")))
    spec = {"token_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64)}
    for batch in tf.data.TFRecordDataset(files).batch(4096):
        counts += np.bincount(tf.io.parse_example(batch, spec)["token_ids"].numpy().ravel(), minlength=vocab_size)
    counts[sorted(skip)] = 0
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=180_000, help="at least this many comments")
    parser.add_argument("--max-seq-length", type=int, default=128)
    args = parser.parse_args(argv)
    if shared_data_absent(COMMENTS, VOCAB):
        return 0
    logging.getLogger().setLevel(logging.ERROR)
    import tensorflow  # noqa: F401  (imported before either clock starts)
    from transformers import AutoTokenizer

    from kcbert_tf.text.vocab import read_vocab, write_tokenizer_dir

    texts = cleaned_comments(args.comments)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_dir = write_tokenizer_dir(read_vocab(str(VOCAB)), os.path.join(tmp, "vocab"), 300)
        input_path = os.path.join(tmp, "cleaned.txt")
        pathlib.Path(input_path).write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")
        print(f"running the transformers pipeline on {len(texts):,} comments ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(str(vocab_dir))
        peer_ids = tokenize_function(tokenizer, texts)
        blocks = len(group_texts(peer_ids, args.max_seq_length))
        peer_seconds = time.perf_counter() - start
        specials = sorted({tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id})
        peer = np.bincount(np.fromiter(itertools.chain.from_iterable(peer_ids), np.int64), minlength=len(tokenizer))
        peer[specials] = 0  # counted as in our records: every id but [CLS], [SEP], [PAD]
        peer_tokens = int(peer.sum())
        del peer_ids  # not left for the garbage collector to walk while our job runs
        print("running make-pretraining-data ...", file=sys.stderr, flush=True)
        output = os.path.join(tmp, "ours")
        start = time.perf_counter()
        stats = our_job(input_path, str(vocab_dir), output, args.max_seq_length)
        our_seconds = time.perf_counter() - start

        ours = record_token_counts(output, args.max_seq_length, len(tokenizer), set(specials))
    same = bool((ours == peer).all())
    our_tokens = stats["tokens"]
    print(f"\n{len(texts):,} cleaned comments ({pathlib.Path(input_path).name}, the shared comments repeated), "
          f"max length {args.max_seq_length}, {os.cpu_count()} cores; imports excluded on both sides\n")
    print("| side | comment tokens | sequences | fill | seconds | tokens/s | vs transformers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    peer_rate, our_rate = peer_tokens / peer_seconds, our_tokens / our_seconds
    peer_fill = peer_tokens / max(1, blocks * args.max_seq_length)
    print(f"| transformers: run_mlm.py's tokenize + group_texts (1 process) | {peer_tokens:,} | {blocks:,} | "
          f"{peer_fill:.1%} of ids are comment tokens | {peer_seconds:.2f} | {peer_rate:,.0f} | 1.00x |")
    print(f"| kcbert-tf make-pretraining-data (Beam, local) | {our_tokens:,} | {stats['sequences']:,} | "
          f"{stats['fill_ratio']:.1%} non-pad | {our_seconds:.2f} | {our_rate:,.0f} | {our_rate / peer_rate:.2f}x |")
    print(f"\nthe same comment tokens packed (our records' ids but [CLS]/[SEP]/[PAD] = the fast tokenizer's "
          f"tokens of every comment, as a multiset): {'yes' if same else 'NO'}")
    if not same or our_tokens != peer_tokens:
        print(f"ERROR: the token counts differ (ours {int(ours.sum()):,}, transformers {int(peer.sum()):,})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
