"""The ``kcbert-tf`` command: one subcommand per pipeline stage.

Each subcommand hands its arguments to the ``run``/``main`` of the module that does the work, so the
CLI, the Beam jobs and the tests share one code path.

Example::

    kcbert-tf preprocess --input comments.txt --output cleaned/
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

#: subcommand → (module with ``main(argv) -> int``, one-line help).
SUBCOMMANDS = {
    "preprocess": (
        "beam_jobs.clean_dedup",
        "clean, filter and deduplicate raw comments into TFRecords (Apache Beam)",
    ),
    "train-tokenizer": (
        "kcbert_tf.vocab_training",
        "train a cased WordPiece vocab.txt the way KcBERT did (Hugging Face tokenizers)",
    ),
    "make-pretraining-data": (
        "beam_jobs.pretraining_data",
        "tokenize cleaned comments and pack them into fixed-length TFRecords (Apache Beam)",
    ),
    "pretrain": (
        "kcbert_tf.training",
        "pretrain the masked LM with model.fit (TPUStrategy, MirroredStrategy or CPU)",
    ),
}

USAGE = """usage: kcbert-tf SUBCOMMAND [options]

KcBERT as a TensorFlow/Keras system: Beam preprocessing, pretraining, Hugging Face conversion.

subcommands:
{commands}

Run `kcbert-tf SUBCOMMAND --help` for a subcommand's options.
"""


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    commands = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items())
    return USAGE.format(commands=commands)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from kcbert_tf import __version__

        print(f"kcbert-tf {__version__}")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter.
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"kcbert-tf: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
