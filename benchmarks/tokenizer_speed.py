"""Benchmark: the in-graph KcBERT tokenizer in a tf.data pipeline vs transformers' fast tokenizer.

Same texts (the 24,000 shared real comments, raw and cleaned: 48,000 texts), same vocab (the real
KcBERT vocab.txt), same run.  transformers encodes the whole list in one batch call (its Rust
tokenizer uses every core); the in-graph tokenizer runs as `tf.data` batches mapped through
`KcBertWordPiece.tokenize` with AUTOTUNE parallelism, consumed in the graph.  Both outputs are
checked id for id before timing.  Prints tokens/s for both and the ratio.

    .venv/bin/python -m benchmarks.tokenizer_speed [--vocab $KCBERT_TF_DATA/kcbert/vocab.txt] [--repeats 5]
"""

from __future__ import annotations

import os
import sys


import argparse  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", default=str(SHARED / "kcbert" / "vocab.txt"))
    parser.add_argument("--comments", default=str(SHARED / "comments" / "news_comments.txt"))
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="best of this many passes each")
    args = parser.parse_args()
    for path in (args.vocab, args.comments):
        if not os.path.exists(path):
            print(f"skipped: {path} is absent (the shared real data)")
            return 0

    import tensorflow as tf
    from transformers import AutoTokenizer

    from kcbert_tf.text.cleaning import clean
    from kcbert_tf.text.tokenizer import load_tokenizer

    raw = pathlib.Path(args.comments).read_text(encoding="utf-8").split("\n")[:-1]
    texts = raw + [clean(text) for text in raw]
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(args.vocab, os.path.join(directory, "vocab.txt"))
        pathlib.Path(directory, "tokenizer_config.json").write_text(
            '{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}'
        )
        reference = AutoTokenizer.from_pretrained(directory)
    tokenizer = load_tokenizer(args.vocab)

    expected = reference(texts, add_special_tokens=False)["input_ids"]
    differing = sum(a != b for a, b in zip(expected, tokenizer.encode(texts)))
    tokens = sum(map(len, expected))

    dataset = (
        tf.data.Dataset.from_tensor_slices(texts)
        .batch(args.batch_size)
        .map(tokenizer.tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    count = lambda: int(dataset.reduce(tf.constant(0, tf.int64), lambda n, ids: n + tf.size(ids.flat_values, tf.int64)))

    def best(run) -> float:
        run()  # warm-up: traces and builds on the first pass
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    assert count() == tokens
    ours = best(count)
    theirs = best(lambda: reference(texts, add_special_tokens=False))
    rows = [
        ("transformers AutoTokenizer (Rust, batch call)", theirs),
        (f"kcbert_tf KcBertWordPiece, tf.data (batch {args.batch_size})", ours),
    ]
    print(f"\n{len(texts):,} texts ({len(raw):,} shared comments raw + cleaned), {tokens:,} tokens, "
          f"vocab {args.vocab}, {os.cpu_count()} cores, best of {args.repeats}")
    print(f"texts whose ids differ from transformers: {differing}\n")
    print(f"| {'tokenizer':<50} | {'seconds':>7} | {'tokens/s':>10} | {'ratio':>6} |")
    print(f"|{'-' * 52}|{'-' * 9}|{'-' * 12}|{'-' * 8}|")
    for name, seconds in rows:
        print(f"| {name:<50} | {seconds:>7.3f} | {tokens / seconds:>10,.0f} | {theirs / seconds:>5.2f}x |")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
