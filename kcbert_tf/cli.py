"""The ``kcbert-tf`` command: one subcommand per pipeline stage, and nothing else.

This is the command layer: it maps each subcommand to the ``run(argv)`` of the module that does
the work, which parses the subcommand's flags into one call of the Python API (so the CLI, the
Python API, the Beam jobs and the tests share one code path); it shows the library's progress
lines and turns a :class:`~kcbert_tf.errors.UserError` into one line on stderr and exit status 2.
A subcommand's module is imported when it runs (the Beam jobs need no Keras, the model commands no
Beam).  Nothing below it imports it.

Example::

    kcbert-tf preprocess --input comments.txt --output cleaned/
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import os
import sys
from types import ModuleType
from typing import Callable, Sequence

import kcbert_tf
from kcbert_tf import __version__
from kcbert_tf.errors import UserError
from kcbert_tf.training import strategy


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: the Python call it makes (its name in :mod:`kcbert_tf`'s API), the one-line
    help, what it imports first with scikit-learn and SciPy hidden (``keras``: the model commands;
    ``tensorflow``: TensorFlow without Keras; ``""``: neither), and the names of its ``run(argv)``
    and its parser builder in the module that defines the call (imported when the subcommand
    runs: the Beam jobs need no Keras, the model commands no Beam)."""

    call: str
    help: str
    lean_import: str = ""
    run: str = "run"
    parser: str = "build_arg_parser"

    def module(self) -> ModuleType:
        if self.call == "demo":  # the command layer's own
            from kcbert_tf import demo

            return demo
        return inspect.getmodule(getattr(kcbert_tf, self.call))

    def functions(self) -> tuple[Callable[[Sequence[str] | None], object], Callable]:
        """The subcommand's ``run(argv)`` and its ``build_arg_parser()``."""
        module = self.module()
        return getattr(module, self.run), getattr(module, self.parser)


#: subcommand → its :class:`Command`.
SUBCOMMANDS = {
    "preprocess": Command("preprocess", "clean, filter and deduplicate raw comments into TFRecords (Apache Beam)"),
    "train-tokenizer": Command("train_tokenizer", "train a cased WordPiece vocab.txt the way KcBERT did "
                               "(Hugging Face tokenizers)", "tensorflow"),
    "make-pretraining-data": Command("make_pretraining_data", "tokenize cleaned comments and pack them into "
                                     "fixed-length TFRecords (Apache Beam)", "tensorflow"),
    "pretrain": Command("pretrain", "pretrain the masked LM with model.fit (TPUStrategy, MirroredStrategy or CPU)",
                        "keras"),
    "finetune": Command("finetune", "fine-tune a model directory on a registered task (NSMC, KorNLI, KorSTS, "
                        "KLUE-NER, KorQuAD, custom, ...)", "keras"),
    "score-checkpoints": Command("score_checkpoints", "fine-tune each checkpoint of a pretraining run on a task "
                                 "(own process) and log the scores on its step axis", "keras"),
    "export-hf": Command("export_hf", "write a model directory in Hugging Face form (safetensors), verified with "
                         "transformers", "keras", "run_export", "build_export_parser"),
    "import-hf": Command("import_hf", "bring a Hugging Face BERT checkpoint (e.g. beomi/kcbert-base) into a model "
                         "directory", "keras", "run_import", "build_import_parser"),
    "export-savedmodel": Command("export_saved_model", "export a TensorFlow SavedModel that takes raw strings "
                                 "(in-graph tokenizer; TF Serving)", "keras"),
    "export-litert": Command("export_litert", "export a task model to LiteRT (int8 or fp32; runs with XNNPACK, on "
                             "phones, and in predict without TensorFlow)", "keras"),
    "predict": Command("predict_file", "a task model's predictions for a file (finetune's, a transformers head from "
                       "import-hf, or a LiteRT export): labels, entities, answers", "keras"),
    "batch-predict": Command("batch_predict", "label (and filter) a whole corpus with a classifier: Beam "
                             "RunInference over its SavedModel"),
    "demo": Command("demo", "every stage on the demo corpus, with a summary table (what `make demo` runs)", "keras"),
    "fill-mask": Command("fill_mask", "the top predictions for each [MASK] in texts, from a model directory of ours "
                         "or a Hugging Face one", "keras"),
}

USAGE = """usage: kcbert-tf SUBCOMMAND [options]

KcBERT as a TensorFlow/Keras system: Beam preprocessing, pretraining, Hugging Face conversion.

subcommands:
{commands}

Run `kcbert-tf SUBCOMMAND --help` for a subcommand's options.
"""


def run_command(prog: str, run: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None) -> int:
    """Run one subcommand's ``run(argv)`` the way every subcommand runs: the library's progress
    lines on the console, a :class:`~kcbert_tf.errors.UserError` as one line on stderr and
    status 2, argparse's own exits passed through."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    for package in ("kcbert_tf", "beam_jobs"):  # progress lines of the library and the jobs
        logging.getLogger(package).setLevel(logging.INFO)
    try:
        run(argv)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        _exit_if_a_tpu_connect_hangs(2)
        return 2
    except SystemExit as exit_:  # argparse: --help (0) or a bad option (2, message printed).
        return exit_.code if isinstance(exit_.code, int) else 2
    except KeyboardInterrupt:
        _exit_if_a_tpu_connect_hangs(130)
        raise
    return 0


def _exit_if_a_tpu_connect_hangs(code: int) -> None:
    """A TPU connect given up on may still block inside TensorFlow and keep the process alive:
    end it now in that case (only then; see ``kcbert_tf.training.strategy.exit_hard_on_hang``)."""
    strategy.exit_hard_on_hang(code)


#: What Keras and TensorFlow import for features no command uses: scikit-learn for Keras'
#: scikit-learn wrappers, SciPy for sparse inputs of TensorFlow's legacy Keras.
OPTIONAL_FOR_KERAS = ("sklearn", "scipy")


def import_without_sklearn_or_scipy(modules: Sequence[str]) -> None:
    """Import ``modules`` (TensorFlow, Keras, KerasHub) with scikit-learn and SciPy hidden
    (:data:`OPTIONAL_FOR_KERAS`: 0.5 to 1.5 s and 70 MB of every TensorFlow command's start-up
    here).  All three take their absence in their stride; once they are in, scikit-learn and SciPy
    import as usual (fine-tuning's metrics)."""
    if any(name in sys.modules for name in (*modules, *OPTIONAL_FOR_KERAS)):
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return  # the command itself says what it makes of another backend
    for name in OPTIONAL_FOR_KERAS:
        sys.modules[name] = None  # an import of it raises ImportError meanwhile
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        pass  # the command imports what it needs again, and reports what is missing
    finally:
        for name in OPTIONAL_FOR_KERAS:
            del sys.modules[name]


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    commands = "\n".join(f"  {name:<{width}}  {command.help}" for name, command in SUBCOMMANDS.items())
    return USAGE.format(commands=commands)


def _serves_litert(argv: Sequence[str]) -> bool:
    """Whether ``--model`` names a LiteRT directory: served without TensorFlow or Keras."""
    from kcbert_tf.litert.litert_dir import is_litert_dir

    for i, arg in enumerate(argv):
        model = argv[i + 1] if arg == "--model" and i + 1 < len(argv) else arg[len("--model="):] if arg.startswith("--model=") else None
        if model:
            return is_litert_dir(model)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"kcbert-tf {__version__}")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter.
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"kcbert-tf: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    command = SUBCOMMANDS[name]
    if not {"-h", "--help"} & set(rest) and not (name == "predict" and _serves_litert(rest)):
        if command.lean_import == "keras":
            import_without_sklearn_or_scipy(["keras", "keras_hub", "tensorflow"])
        elif command.lean_import == "tensorflow":
            import_without_sklearn_or_scipy(["tensorflow"])
    run, _ = command.functions()
    return run_command(f"kcbert-tf {name}", run, rest)


if __name__ == "__main__":
    sys.exit(main())
