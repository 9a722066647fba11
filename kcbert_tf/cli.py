"""The ``kcbert-tf`` command: one subcommand per pipeline stage.

Each subcommand hands its arguments to the ``run``/``main`` of the module that does the work, so the
CLI, the Beam jobs and the tests share one code path.

Example::

    kcbert-tf preprocess --input comments.txt --output cleaned/
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Callable, Sequence

#: subcommand → (``module`` with ``main(argv) -> int``, or ``module:function``; one-line help).
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
    "export-hf": (
        "kcbert_tf.hf_conversion:main_export",
        "write a model directory in Hugging Face form (safetensors), verified with transformers",
    ),
    "import-hf": (
        "kcbert_tf.hf_conversion:main_import",
        "bring a Hugging Face BERT checkpoint (e.g. beomi/kcbert-base) into a model directory",
    ),
    "export-savedmodel": (
        "kcbert_tf.saved_model",
        "export a TensorFlow SavedModel that takes raw strings (in-graph tokenizer; TF Serving)",
    ),
    "fill-mask": (
        "kcbert_tf.fill_mask",
        "the top predictions for [MASK] in a text, from a Hugging Face directory (transformers)",
    ),
}

USAGE = """usage: kcbert-tf SUBCOMMAND [options]

KcBERT as a TensorFlow/Keras system: Beam preprocessing, pretraining, Hugging Face conversion.

subcommands:
{commands}

Run `kcbert-tf SUBCOMMAND --help` for a subcommand's options.
"""


def run_command(
    prog: str,
    run: Callable[[Sequence[str] | None], object],
    argv: Sequence[str] | None,
    user_errors: tuple[type[BaseException], ...],
    logger: logging.Logger | None = None,
) -> int:
    """Run one subcommand's ``run(argv)`` the way every subcommand runs: progress lines from
    ``logger`` on the console, a user error (one of ``user_errors``) as one line on stderr and
    status 2, argparse's own exits passed through."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    if logger is not None:
        logger.setLevel(logging.INFO)
        logging.getLogger("kcbert_tf").setLevel(logging.INFO)  # the library's progress lines too
    try:
        run(argv)
    except user_errors as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse: --help (0) or a bad option (2, message printed).
        return exit_.code if isinstance(exit_.code, int) else 2
    return 0


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
    module_name, _, function = SUBCOMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module_name), function or "main")(rest)


if __name__ == "__main__":
    sys.exit(main())
