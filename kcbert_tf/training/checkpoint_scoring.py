"""Checkpoints scored by fine-tuning: ``kcbert-tf score-checkpoints``.

A pretraining run's masked-LM loss says little about how good its encoder is for a task; a short
fine-tuning of each checkpoint does.  :func:`score_checkpoints` takes the checkpoints a
``kcbert-tf pretrain`` run writes under ``MODEL_DIR/checkpoints/`` in step order and, for each
one not scored yet (a rerun resumes; ``every``: only steps that are its multiples):

1. turns it into a model directory (:func:`checkpoint_to_model_dir`: the masked LM of
   ``MODEL_DIR/config.json`` with the checkpoint's model weights alone, no optimizer state) in a
   local scratch directory;
2. fine-tunes that in a process of its own, ``kcbert-tf finetune --init SCRATCH ...``, at a lower
   CPU priority, so the training process is never touched and each fine-tuning's memory is
   freed when it ends; the child's settings are the task's, with the overrides given here, the
   same for every checkpoint (same seed);
3. reads the task's metric of the best epoch from the child's ``metrics.json`` and writes it to
   the run's TensorBoard, ``MODEL_DIR/logs/finetune-TASK``, as ``TASK/METRIC`` (with the other
   scores of that epoch as ``TASK/NAME``) on the pretraining step axis, and as a row of the table
   ``MODEL_DIR/checkpoint_scores.tsv`` (step, task, metric, score, the epoch's scores as JSON,
   seconds, checkpoint), rewritten whole under a temporary name each time, so a kill never
   leaves half a row.

With ``watch`` it then polls for new checkpoints every ``poll_seconds`` until the run is
finished (``training_state.json`` is written and every checkpoint is scored) or Ctrl-C.  It runs
beside the training: on the TPU VM's CPU, or on another machine that reads the same ``gs://``
directory (the model directory's files are read and written with ``tf.io.gfile``; the scratch
directories are local).  The run must keep its checkpoints until they are scored:
``kcbert-tf pretrain --keep-checkpoints 0`` keeps them all (one deleted before it was scored is
skipped with a warning).  TF Model Garden's ``continuous_finetune_lib`` does the same for its
trainer.

Example (a few steps of the tiny model on the demo comments, each checkpoint fine-tuned for one
epoch on the demo sentiment files)::

    kcbert-tf pretrain --config kcbert-tiny --train-config pretrain-tiny --data pretraining/ \\
        --model-dir runs/tiny --steps 300 --checkpoint-every 100 --keep-checkpoints 0
    kcbert-tf score-checkpoints --model-dir runs/tiny --task nsmc \\
        --train kcbert_tf/resources/demo_sentiment_train.tsv --eval kcbert_tf/resources/demo_sentiment_eval.tsv \\
        --epochs 1 --batch-size 16 --seed 42

or, in Python, ``score_checkpoints("runs/tiny", "nsmc", train=..., eval=..., epochs=1)``, which
returns the table's rows for the task (:class:`Score`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import logging
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import tempfile
import time
from typing import Iterator, Sequence

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.model.model_dir import METRICS_FILE, ModelDir
from kcbert_tf.output_dir import write_text_atomically
from kcbert_tf.training.pretraining import CHECKPOINT_DIR, LOG_DIR, STATE_FILE

__all__ = ["Score", "TABLE_FILE", "list_checkpoints", "checkpoint_to_model_dir", "score_checkpoint", "read_table",
           "format_table", "score_checkpoints", "build_arg_parser", "run"]

_LOG = logging.getLogger(__name__)

#: The table of scores, in the model directory.
TABLE_FILE = "checkpoint_scores.tsv"
COLUMNS = ("step", "task", "metric", "score", "scores", "seconds", "checkpoint")

#: The child process: the ``kcbert-tf`` command, run by this interpreter (its arguments follow).
_KCBERT_TF = "import sys; from kcbert_tf.cli import main; sys.exit(main(sys.argv[1:]))"
#: Lines of the child's stderr shown when it fails.
_TAIL_LINES = 25


@dataclasses.dataclass(frozen=True)
class Score:
    """One row of the table: a checkpoint's ``step``, the ``task``, its ``metric`` and the
    best epoch's ``score`` on it, all of that epoch's ``scores``, the ``seconds`` it took (model
    directory and fine-tuning) and the ``checkpoint`` path."""

    step: int
    task: str
    metric: str
    score: float
    scores: dict
    seconds: float
    checkpoint: str

    def line(self) -> str:
        values = (self.step, self.task, self.metric, repr(self.score), json.dumps(self.scores, sort_keys=True),
                  f"{self.seconds:.1f}", self.checkpoint)
        return "\t".join(str(value) for value in values)


# --- the checkpoints ------------------------------------------------------------------------------


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def list_checkpoints(model_dir: str) -> list[tuple[int, str]]:
    """(step, path) of the checkpoints a pretraining run lists in ``MODEL_DIR/checkpoints``, by
    step: those its ``checkpoint`` state file records (a checkpoint is listed there once it is
    complete, and no longer once the run's ``CheckpointManager`` has deleted it)."""
    import tensorflow as tf

    directory = os.path.join(model_dir, CHECKPOINT_DIR)
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    found = {}
    for path in [*state.all_model_checkpoint_paths, state.model_checkpoint_path]:
        # The run may have written absolute paths on another machine: the name is what counts.
        name = os.path.basename(path)
        match = re.fullmatch(r".*-(\d+)", name)
        if match:
            found[int(match.group(1))] = os.path.join(directory, name)
    return sorted(found.items())


def checkpoint_to_model_dir(model_dir: str | ModelDir, checkpoint: str, output: str) -> ModelDir:
    """Write the model of a pretraining checkpoint as a model directory in ``output``: the masked
    LM of ``model_dir``'s ``config.json`` and ``vocab.txt`` with the model weights of
    ``checkpoint`` (its optimizer and RNG state left out).  Every weight of the model must come
    from the checkpoint (a checkpoint of another model is an error naming both)."""
    import keras
    import tensorflow as tf

    from kcbert_tf.model.presets import build_model

    source = model_dir if isinstance(model_dir, ModelDir) else ModelDir.read(model_dir, need_weights=False)
    model = build_model(source.config)
    # The checkpoint's "model" node holds the encoder and the MLM head, and the run's optimizer
    # and compile state too, which the model built here has in another form (its own default
    # compile): restore through a node that holds only the two layers, by their names there.
    weights = tf.Module()
    weights.backbone, weights.masked_lm_head = model.backbone, model.masked_lm_head
    try:
        status = tf.train.Checkpoint(model=weights).restore(checkpoint).expect_partial()
        status.assert_existing_objects_matched()  # every variable of the two layers was in it
    except (AssertionError, ValueError) as error:  # a variable it lacks, or of another shape
        raise UserError(
            f"{checkpoint}: not a checkpoint of the model of {source.config_path} ({str(error).splitlines()[0]}); "
            "give the --model-dir of the `kcbert-tf pretrain` run that wrote it"
        ) from None
    written = ModelDir.write(output, source.config, source.vocab, model)
    del model
    keras.backend.clear_session()  # a long --watch builds one model per checkpoint
    gc.collect()
    return written


# --- the table -------------------------------------------------------------------------------------


def read_table(path: str) -> list[Score]:
    """The rows of a scores table (none when there is no table yet)."""
    gfile = _gfile()
    if not gfile.exists(path):
        return []
    with gfile.GFile(path, "r") as handle:
        lines = handle.read().splitlines()
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise UserError(f"{path}: not a scores table (its header is not {' '.join(COLUMNS)}); move it away "
                        "and run the command again")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        try:
            step, task, metric, score, scores, seconds, checkpoint = fields
            rows.append(Score(int(step), task, metric, float(score), json.loads(scores), float(seconds), checkpoint))
        except ValueError:
            raise UserError(f"{path}, line {number}: not a row of {len(COLUMNS)} columns "
                            f"({' '.join(COLUMNS)}); remove the line and run the command again") from None
    return rows


def write_table(path: str, rows: Sequence[Score]) -> None:
    """Write the whole table anew (by step, then task), under a temporary name then renamed."""
    ordered = sorted(rows, key=lambda row: (row.step, row.task))
    write_text_atomically(path, "\t".join(COLUMNS) + "\n" + "".join(row.line() + "\n" for row in ordered))


def format_table(rows: Sequence[Score]) -> str:
    """The rows of one task as an aligned text table, and the step that scored best.

    >>> rows = [Score(2000, "nsmc", "accuracy", 0.7812, {"epoch": 1, "accuracy": 0.7812}, 41.0, "ckpt-2000"),
    ...         Score(4000, "nsmc", "accuracy", 0.8034, {"epoch": 1, "accuracy": 0.8034}, 40.2, "ckpt-4000")]
    >>> print(format_table(rows))
          step    accuracy   seconds
          2000      0.7812        41
          4000      0.8034        40
    best: step 4000 (nsmc accuracy 0.8034)
    """
    if not rows:
        return "score-checkpoints: no checkpoint scored"
    metric = rows[0].metric
    lines = [f"{'step':>10}  {metric:>10}  {'seconds':>8}"]
    lines += [f"{row.step:>10}  {row.score:>10.4f}  {row.seconds:>8.0f}" for row in rows]
    best = max(rows, key=lambda row: row.score)
    lines.append(f"best: step {best.step} ({best.task} {metric} {best.score:.4f})")
    return "\n".join(lines)


# --- one checkpoint -------------------------------------------------------------------------------


def _flags(**values) -> list[str]:
    """Command-line flags of ``kcbert-tf finetune`` for keyword values (None: left out)."""
    flags = []
    for name, value in values.items():
        if value is not None:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


def _child_environment() -> dict:
    """The child's environment: this one, with the kcbert_tf this process runs first on the path."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if package_root not in [*site.getsitepackages(), site.getusersitepackages()]:  # a checkout, not installed
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return environment


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        kept = [line.rstrip() for line in handle.read().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_finetune(flags: Sequence[str], log_dir: str, *, niceness: int) -> None:
    """Run ``kcbert-tf finetune FLAGS`` in a child process at ``niceness`` (added to this
    process's), its output into ``log_dir`` (``finetune.stdout``, ``finetune.stderr``); wait for
    it (on Ctrl-C: end it first).  A failure is a :class:`UserError` with the tail of its stderr."""
    out_path, err_path = os.path.join(log_dir, "finetune.stdout"), os.path.join(log_dir, "finetune.stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", _KCBERT_TF, "finetune", *flags], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            env=_child_environment(), preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )
        try:
            code = child.wait()
        except BaseException:  # Ctrl-C (the child had it too) or an error here: end the child
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            raise
    if code:
        raise UserError(f"`kcbert-tf finetune` exited with status {code}:\n{_tail(err_path)}")


def score_checkpoint(source: ModelDir, checkpoint: str, task: str, *, finetune_flags: Sequence[str],
                     work_dir: str, niceness: int = 10) -> tuple[str, dict]:
    """Fine-tune one checkpoint of the run in ``source`` (its config and vocab) in a child
    process: its model directory in ``work_dir``/model, the fine-tuned model in
    ``work_dir``/finetune; return (metric, the best epoch's scores) from the child's
    ``metrics.json``."""
    model_path, output = os.path.join(work_dir, "model"), os.path.join(work_dir, "finetune")
    checkpoint_to_model_dir(source, checkpoint, model_path)
    try:
        run_finetune(["--task", task, *_flags(init=model_path, output=output), *finetune_flags], work_dir,
                     niceness=niceness)
    except UserError as error:
        raise UserError(f"{checkpoint}: fine-tuning it failed: {error}") from None
    with open(os.path.join(output, METRICS_FILE), encoding="utf-8") as handle:
        metrics = json.load(handle)
    return metrics["metric"], metrics["best"]


@contextlib.contextmanager
def _scratch(work_dir: str | None, step: int) -> Iterator[str]:
    """``work_dir``/ckpt-STEP, kept (an earlier try's removed first), or a temporary directory."""
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"kcbert-tf-score-{step}-") as scratch:
            yield scratch
        return
    scratch = os.path.join(work_dir, f"ckpt-{step}")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    yield scratch


def _is_not_found(error: Exception) -> bool:
    import tensorflow as tf

    return isinstance(error, (tf.errors.NotFoundError, FileNotFoundError))


def _score(source: ModelDir, step: int, path: str, task: str, finetune_flags: Sequence[str],
           work_dir: str | None, niceness: int) -> Score | None:
    """The row of one checkpoint; None (and a warning) when the run deleted it before it was
    scored."""
    start = time.perf_counter()
    try:
        with _scratch(work_dir, step) as scratch:
            metric, scores = score_checkpoint(source, path, task, finetune_flags=finetune_flags, work_dir=scratch,
                                              niceness=niceness)
    except Exception as error:  # noqa: BLE001 - only a checkpoint gone meanwhile is skipped
        if not _is_not_found(error) or _gfile().exists(path + ".index"):
            raise
        _LOG.warning("score-checkpoints: %s was deleted before it was scored (the run keeps only its newest "
                     "checkpoints; `kcbert-tf pretrain --keep-checkpoints 0` keeps them all): skipped", path)
        return None
    seconds = round(time.perf_counter() - start, 1)  # as the table holds it
    return Score(step, task, metric, float(scores[metric]), scores, seconds, path)


# --- the command ----------------------------------------------------------------------------------


class _TensorBoard:
    """The scores on the pretraining run's step axis, in ``MODEL_DIR/logs/finetune-TASK``."""

    def __init__(self, model_dir: str, task: str):
        import tensorflow as tf

        self._tf = tf
        self._task = task
        self._writer = tf.summary.create_file_writer(os.path.join(model_dir, LOG_DIR, f"finetune-{task}"))

    def write(self, row: Score) -> None:
        values = {row.metric: row.score}
        values.update({name: value for name, value in row.scores.items()
                       if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)})
        with self._writer.as_default(step=row.step):
            for name, value in values.items():
                self._tf.summary.scalar(f"{self._task}/{name}", value)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def score_checkpoints(
    model_dir: str,
    task: str,
    *,
    train: str,
    eval: str | None = None,
    every: int | None = None,
    watch: bool = False,
    poll_seconds: float = 60,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    max_seq_length: int | None = None,
    seed: int | None = None,
    limit_train: int | None = None,
    finetune_args: Sequence[str] = (),
    work_dir: str | None = None,
    niceness: int = 10,
) -> list[Score]:
    """Score the checkpoints of the pretraining run in ``model_dir`` by fine-tuning each on
    ``task`` (``train`` and ``eval`` files, as ``kcbert-tf finetune`` reads them); return the
    table's rows for ``task``, by step.

    ``every``: score only the steps that are multiples of it.  ``watch``: then wait for new
    checkpoints (a poll every ``poll_seconds``) until the run has written ``training_state.json``
    and every checkpoint is scored, or Ctrl-C.  ``epochs``, ``batch_size``, ``learning_rate``,
    ``max_seq_length``, ``seed``, ``limit_train`` (None: the task's) and ``finetune_args`` (more
    ``kcbert-tf finetune`` flags, e.g. ``["--cpu-replicas", "2"]``) set the fine-tuning, the same
    for every checkpoint.  ``work_dir``: keep each checkpoint's model directory and fine-tuned
    model there (``ckpt-STEP/model``, ``ckpt-STEP/finetune``; default: temporary directories,
    removed after each checkpoint).  ``niceness``: how much lower the children's CPU priority is.
    """
    if not _gfile().isdir(model_dir):
        raise UserError(f"--model-dir {model_dir}: no such directory (give the --model-dir of a "
                        "`kcbert-tf pretrain` run)")
    if every is not None and every < 1:
        raise UserError(f"--every must be >= 1, got {every}")
    if poll_seconds <= 0:
        raise UserError(f"--poll-seconds must be > 0, got {poll_seconds}")
    for name, path in (("--train", train), ("--eval", eval)):
        if path is not None and not _gfile().exists(path):
            raise UserError(f"{name} {path}: no such file (give the task's {name[2:]} file)")
    finetune_flags = [*_flags(train=train, eval=eval, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, max_seq_length=max_seq_length, seed=seed,
                              limit_train=limit_train), *finetune_args]
    table = os.path.join(model_dir, TABLE_FILE)
    rows = read_table(table)
    source = board = None
    waiting = False
    try:
        while True:
            # Looked at before the listing: the run writes it after its last checkpoint, so once
            # it is there the listing holds every checkpoint the run will write.
            finished = _gfile().exists(os.path.join(model_dir, STATE_FILE))
            done = {row.step for row in rows if row.task == task}
            checkpoints = list_checkpoints(model_dir)
            if not checkpoints and (finished or not watch):
                raise UserError(
                    f"{os.path.join(model_dir, CHECKPOINT_DIR)}: no checkpoints to score; give the --model-dir of a "
                    "`kcbert-tf pretrain` run that has written some (`kcbert-tf pretrain --keep-checkpoints 0` "
                    "keeps them all)" + ("" if watch else ", or add --watch to wait for them")
                )
            pending = [(step, path) for step, path in checkpoints
                       if step not in done and (every is None or step % every == 0)]
            for step, path in pending:
                waiting = False
                source = source or ModelDir.read(model_dir, need_weights=False)
                board = board or _TensorBoard(model_dir, task)
                row = _score(source, step, path, task, finetune_flags, work_dir, niceness)
                if row is None:
                    continue
                # TensorBoard first: after a kill in between, the rerun writes the point again
                # rather than leave the table claiming a point TensorBoard lacks.
                board.write(row)
                rows = [old for old in read_table(table) if (old.step, old.task) != (step, task)] + [row]
                write_table(table, rows)  # read again first: a scorer of another task may share it
                _LOG.info("score-checkpoints: step %d %s %s %.4f (%.0f s)", step, task, row.metric, row.score,
                          row.seconds)
            if not watch or finished:
                break
            if pending:
                continue  # scoring took a while: look again at once
            if not waiting:
                _LOG.info("score-checkpoints: waiting for new checkpoints in %s (a look every %g s; "
                          "Ctrl-C to stop)", os.path.join(model_dir, CHECKPOINT_DIR), poll_seconds)
                waiting = True
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        if not watch:
            raise
        _LOG.info("score-checkpoints: stopped; %s holds what was scored", table)
    finally:
        if board is not None:
            board.close()
    mine = sorted((row for row in rows if row.task == task), key=lambda row: row.step)
    print(format_table(mine), flush=True)
    return mine


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf score-checkpoints",
        description="Fine-tune each checkpoint of a pretraining run on a task, each in a process of its own, and "
        "write the scores to the run's TensorBoard (logs/finetune-TASK, on the step axis) and to "
        f"MODEL_DIR/{TABLE_FILE}.",
    )
    parser.add_argument("--model-dir", required=True,
                        help="the --model-dir of a `kcbert-tf pretrain` run (local or gs://)")
    parser.add_argument("--task", required=True, help="a task of `kcbert-tf finetune`: nsmc, korsts, ...")
    parser.add_argument("--train", required=True, help="the task's training file")
    parser.add_argument("--eval", default=None, help="the task's evaluation file")
    parser.add_argument("--every", type=int, default=None, metavar="N",
                        help="score only the steps that are multiples of N (default: every checkpoint)")
    parser.add_argument("--watch", action="store_true",
                        help="then wait for new checkpoints until the run has finished and all are scored")
    parser.add_argument("--poll-seconds", type=float, default=60, metavar="S",
                        help="how often --watch looks (default 60)")
    tuning = parser.add_argument_group("the fine-tuning of each checkpoint (default: the task's settings)")
    tuning.add_argument("--epochs", type=int, default=None)
    tuning.add_argument("--batch-size", type=int, default=None)
    tuning.add_argument("--learning-rate", type=float, default=None)
    tuning.add_argument("--max-seq-length", type=int, default=None)
    tuning.add_argument("--seed", type=int, default=None)
    tuning.add_argument("--limit-train", type=int, default=None, metavar="N",
                        help="use only the first N training examples")
    tuning.add_argument("--finetune-args", type=shlex.split, default=(), metavar="FLAGS",
                        help="more flags of `kcbert-tf finetune`, as one quoted string (one flag alone: "
                        "--finetune-args=\"...\")")
    tuning.add_argument("--work-dir", default=None, metavar="DIR",
                        help="keep each checkpoint's model directory and fine-tuned model in DIR/ckpt-STEP "
                        "(default: in the temporary directory, $TMPDIR, removed after each)")
    tuning.add_argument("--niceness", type=int, default=10, metavar="N",
                        help="how much lower the fine-tuning processes' CPU priority is (default 10; 0: the same)")
    return parser


def run(argv: Sequence[str] | None = None) -> list[Score]:
    """``kcbert-tf score-checkpoints``: the flags parsed into one :func:`score_checkpoints`
    call; return the rows."""
    return call_with_flags(score_checkpoints, build_arg_parser(), argv)
