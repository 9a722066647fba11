"""What the parity benchmarks share (`finetune_parity` for the sentence tasks, `parity_ner_qa`
for NER and KorQuAD): KcBERT-Finetune's optimizer settings written out, the small start config,
the goal, and running a side (or any `kcbert-tf` stage) in its own process with its CPU time and
peak memory recorded."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from typing import NamedTuple

#: The nsmc preset (kcbert_tf.tasks.registry), written out: both sides get these.
MAX_LENGTH, BATCH_SIZE, LEARNING_RATE, ADAM_EPSILON, CLIP_NORM, TRAIN_SEED = 50, 64, 5e-5, 1e-8, 1.0, 42
GOAL_POINTS = 1.0


def small_config(layers: int, hidden: int, vocab_size: int) -> dict:
    """A small KcBERT-shaped config (Hugging Face form): ``layers`` x ``hidden``, 64-wide heads."""
    return {
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": max(1, hidden // 64),
        "intermediate_size": 4 * hidden, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
    }


class ProcessRun(NamedTuple):
    """One process run: its log's name, CPU seconds (user + system), wall seconds, the 1-minute
    load average at its end and its peak resident memory (``ru_maxrss``)."""

    name: str
    cpu_seconds: float
    wall_seconds: float
    load: float
    peak_mb: float


#: Every process run, in order.  Other work on the machine skews wall times: CPU / wall well under
#: the core count, or a load average over it, says a run shared the cores.
PROCESSES: list[ProcessRun] = []


class CommandFailed(RuntimeError):
    """A ``kcbert-tf`` stage exited with an error (the message ends with its log's last lines)."""


def run_process(command: list[str], log_path: pathlib.Path) -> tuple[int, float]:
    """Run ``command`` with its output in ``log_path``; its exit status and wall seconds."""
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    PROCESSES.append(ProcessRun(log_path.stem, usage.ru_utime + usage.ru_stime, seconds, os.getloadavg()[0],
                                usage.ru_maxrss / 1024))
    return os.waitstatus_to_exitcode(status), seconds


def run_kcbert_tf(log_path: pathlib.Path, *argv: str) -> ProcessRun:
    """``kcbert-tf ARGV`` in its own process, its output in ``log_path``; what it took.  A non-zero
    exit status raises :class:`CommandFailed`."""
    print(f"$ kcbert-tf {' '.join(argv)}", flush=True)
    status, _ = run_process([sys.executable, "-m", "kcbert_tf.cli", *argv], log_path)
    if status:
        raise CommandFailed(f"kcbert-tf {argv[0]} exited with {status}; the end of {log_path}:\n{tail(log_path)}")
    return PROCESSES[-1]


def describe_processes() -> str:
    """One line: each process's CPU / wall seconds (the cores it used) and the load at its end."""
    cores = os.cpu_count()
    return (f"processes (CPU s / wall s = cores used of {cores}; 1-minute load average at the end, {cores} = this "
            "benchmark alone on all cores): " + "; ".join(
                f"{run.name} {run.cpu_seconds:.0f} / {run.wall_seconds:.0f} = {run.cpu_seconds / run.wall_seconds:.2f}, "
                f"load {run.load:.2f}" for run in PROCESSES))


def tail(path: pathlib.Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def torch_train_epoch(model, loader, optimizer, schedule) -> list[float]:
    """One epoch of the plain PyTorch loop the transformers sides share: forward, backward,
    ``clip_grad_norm_`` at :data:`CLIP_NORM`, AdamW step, schedule step; each batch's loss."""
    import torch

    losses = []
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses
