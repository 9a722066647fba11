"""A command's errors name only flags that it has, and send the user to the right step: every
``--flag`` in an error line is an option of that command's parser, or of the other command the
line names (``kcbert-tf make-pretraining-data --input ...``).  Checked on the errors of many bad
invocations of every command, and on the string literals of every command's own module."""

from __future__ import annotations

import ast
import inspect
import re

import pytest

from conftest import model_config
from kcbert_tf.cli import SUBCOMMANDS
from kcbert_tf.cli import main as cli

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*")
OTHER_COMMAND = re.compile(r"`kcbert-tf ([a-z-]+)([^`]*)`")
#: A command line of another program, quoted in a message (its flags are its own).
OTHER_PROGRAM = re.compile(r"`(?!kcbert-tf )[a-z][\w.-]* [^`]*`")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아", "싫", "##어"]


def parser_flags(command: str) -> set[str]:
    _, build = SUBCOMMANDS[command].functions()
    return {option for action in build()._actions for option in action.option_strings}


def wrong_flags(command: str, text: str) -> list[str]:
    """The flags ``text`` names that neither ``command`` nor a command it quotes has."""
    wrong = []
    for other, rest in OTHER_COMMAND.findall(text):
        if other in SUBCOMMANDS:
            wrong += [flag for flag in FLAG.findall(rest) if flag not in parser_flags(other)]
    own = OTHER_PROGRAM.sub("", OTHER_COMMAND.sub("", text))
    return wrong + [flag for flag in FLAG.findall(own) if flag not in parser_flags(command)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Small model directories: a masked LM, a sentence classifier, a token classifier."""
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.task_record import TaskRecord

    root = tmp_path_factory.mktemp("models")
    base = BertConfig.from_dict(model_config(vocab_size=len(VOCAB), max_position_embeddings=32))
    made = {}
    for name, config, record in (
        ("mlm", base, None),
        ("classifier", base.with_labels(["neg", "pos"]),
         TaskRecord("nsmc", "sequence_classification", 32, True, ("neg", "pos"),
                    options={"columns": {"text": "document", "label": "label", "text_pair": None}})),
        ("tagger", base.with_token_labels(["O", "B-PS", "I-PS"]),
         TaskRecord("word-tags", "token_classification", 32, False, ("O", "B-PS", "I-PS"))),
    ):
        ModelDir.write(str(root / name), config, VOCAB, build_model(config), task=record)
        made[name] = root / name
    (root / "vocab.txt").write_text("".join(f"{t}\n" for t in VOCAB), encoding="utf-8")
    (root / "comments.txt").write_text("좋아 좋아 정말 좋아요\n싫어 싫어 정말 싫어요\n", encoding="utf-8")
    (root / "reviews.tsv").write_text("review\tlabel\n좋아\t1\n싫어\t0\n", encoding="utf-8")
    (root / "occupied").mkdir()
    (root / "occupied" / "keep.txt").write_text("x")
    made["root"] = root
    return made


def cases(m: dict) -> list[list[str]]:
    root = m["root"]
    missing = str(root / "missing")
    return [
        ["preprocess", "--input", missing, "--output", str(root / "o1")],
        ["preprocess", "--input", str(root / "comments.txt"), "--output", str(root / "o2"), "--min-chars", "-1"],
        ["train-tokenizer", "--input", missing, "--output", str(root / "o3")],
        ["make-pretraining-data", "--input", str(root / "comments.txt"), "--vocab", missing, "--output", str(root / "o4")],
        ["make-pretraining-data", "--input", str(root / "comments.txt"), "--vocab", str(root / "vocab.txt"),
         "--output", str(root / "o5"), "--max-seq-length", "2"],
        # A text file where pretraining records belong: sent to make-pretraining-data.
        ["pretrain", "--config", "kcbert-tiny", "--data", str(root / "comments.txt"), "--model-dir", str(root / "o6")],
        ["pretrain", "--config", "kcbert-huge", "--data", str(root), "--model-dir", str(root / "o7")],
        ["finetune", "--task", "sst2", "--train", missing, "--eval", missing, "--init", str(m["mlm"]), "--output",
         str(root / "o8")],
        ["finetune", "--task", "nsmc", "--train", str(root / "reviews.tsv"), "--eval", str(root / "reviews.tsv"),
         "--init", str(m["mlm"]), "--output", str(root / "o9")],
        ["finetune", "--task", "nsmc", "--train", str(root / "reviews.tsv"), "--eval", str(root / "reviews.tsv"),
         "--init", str(m["mlm"]), "--output", str(root / "o10"), "--doc-stride", "64"],
        ["finetune", "--task", "custom", "--train", str(root / "reviews.tsv"), "--eval", str(root / "reviews.tsv"),
         "--init", str(m["mlm"]), "--output", str(root / "o11")],
        # A model directory that has no checkpoints (a finished import, not a pretraining run).
        ["score-checkpoints", "--model-dir", str(m["mlm"]), "--task", "nsmc", "--train", str(root / "reviews.tsv")],
        # A TSV without the record's text column: sent to --text-column (predict has no --label-column).
        ["predict", "--model", str(m["classifier"]), "--input", str(root / "reviews.tsv")],
        ["predict", "--model", str(m["mlm"]), "--input", str(root / "reviews.tsv")],
        ["predict", "--model", str(m["tagger"]), "--input", str(root / "reviews.tsv"), "--text-column", "review"],
        ["predict", "--model", str(m["classifier"]), "--input", str(root / "reviews.tsv"), "--batch-size", "0"],
        ["predict", "--model", str(m["classifier"]), "--input", str(root / "reviews.tsv"), "--max-seq-length", "99"],
        ["export-savedmodel", "--model-dir", str(m["tagger"]), "--output", str(root / "o12")],
        ["export-savedmodel", "--model-dir", str(m["classifier"]), "--output", str(root / "occupied")],
        ["export-litert", "--model", str(m["mlm"]), "--output", str(root / "o18")],
        ["export-litert", "--model", str(m["classifier"]), "--output", str(root / "occupied")],
        ["export-litert", "--model", str(m["classifier"]), "--output", str(root / "o19"), "--max-seq-length", "99"],
        ["export-hf", "--model-dir", missing, "--output", str(root / "o13")],
        ["import-hf", "--input", missing, "--output", str(root / "o14")],
        ["batch-predict", "--model", str(m["classifier"]), "--input", str(root / "comments.txt"), "--output",
         str(root / "o15"), "--keep-labels", "pos", "--drop-labels", "neg"],
        ["batch-predict", "--model", str(m["mlm"]), "--input", str(root / "comments.txt"), "--output", str(root / "o16")],
        ["batch-predict", "--model", str(m["classifier"]), "--input", str(root / "comments.txt"), "--output",
         str(root / "o17"), "--keep-labels", "meh"],
        ["fill-mask", "--model", str(m["mlm"]), "no mask here"],
        ["fill-mask", "--model", str(m["classifier"]), "[MASK] 좋아"],
    ]


def test_every_error_names_only_flags_of_its_command_and_the_right_step(models, capsys):
    seen = set()
    for argv in cases(models):
        code = cli(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, (argv, err)
        line = err.splitlines()[-1]
        assert line.startswith(f"kcbert-tf {argv[0]}: error: "), (argv, line)
        assert not wrong_flags(argv[0], line), (argv, line)
        seen.add(argv[0])
    assert seen == set(SUBCOMMANDS) - {"demo"}


def test_the_two_messages_that_sent_users_the_wrong_way(models, capsys):
    root = models["root"]
    assert cli(["predict", "--model", str(models["classifier"]), "--input", str(root / "reviews.tsv")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no column 'document'" in line and "--text-column" in line and "--label-column" not in line
    assert cli(["pretrain", "--config", "kcbert-tiny", "--data", str(root / "comments.txt"), "--model-dir",
                str(root / "o-pretrain")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not pretraining records" in line and "`kcbert-tf make-pretraining-data --input" in line
    assert "vocab" not in line.split("make-pretraining-data")[0]
    assert not (root / "o-pretrain").exists()


def string_literals(module) -> list[str]:
    """The string literals of a module's source, docstrings aside; an f-string whole (adjacent
    literals are one already), each replacement field written ``X``."""
    tree = ast.parse(inspect.getsource(module))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(part.value if isinstance(part, ast.Constant) else "X" for part in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | inside_fstrings:
            texts.append(node.value)
    return texts


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_the_flags_a_command_s_own_module_mentions_are_its_own(command):
    """Every ``--flag`` in the string literals of the module a command runs (its messages, its
    help) is one of its own, or of a command it quotes; modules serving two commands (export-hf,
    import-hf) answer to both parsers."""
    module = SUBCOMMANDS[command].module()
    siblings = [name for name, other in SUBCOMMANDS.items() if other.module() is module]
    beam_options = {"--runner", "--project", "--region", "--temp_location", "--extra_package", "--setup_file",
                    "--direct_num_workers", "--direct_running_mode"}
    wrong = set()
    for text in string_literals(module):
        for name in siblings:
            found = set(wrong_flags(name, text)) - beam_options
            if not found:
                break
        else:
            wrong |= found
    assert not wrong, f"{command}: {sorted(wrong)}"
