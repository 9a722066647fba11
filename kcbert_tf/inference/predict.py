"""``kcbert-tf predict``: a task model's predictions for a file.

    kcbert-tf predict --model runs/kcbert-base-nsmc --input reviews.tsv --output predictions.tsv
    kcbert-tf predict --model runs/kcbert-base-ner --input sentences.txt --output entities.txt
    kcbert-tf predict --model runs/kcbert-base-korquad --input questions.json --output predictions.json

The model directory's task record (``task.json``, written by ``finetune`` and by ``import-hf`` for
a transformers head) says how the model is used; the model is loaded with its preprocessor built
from it (:meth:`~kcbert_tf.model.model_dir.ModelDir.use` applies ``--max-seq-length`` and
``--no-clean``), and the task registry (:mod:`kcbert_tf.tasks.registry`) gives the task class
whose ``predict_file`` reads the input and writes the predictions (:mod:`kcbert_tf.tasks.contract`;
``--text-column`` / ``--text-pair-column`` for a TSV).  The formats:

- **a sentence task**: the input has the record's columns (a label column may be there or not) and
  is read and cleaned the same way; the output is tab-separated, one line per input example in
  input order: the input's columns, then ``predicted`` and each class's probability
  (``p_LABEL``), or the score for a regressor.  Examples with an empty text get an empty
  prediction.  The input is streamed and the output written as it is computed (a file of any
  size); rows are sorted by length within chunks of 8,192 into batches of ``--batch-size`` cut
  to their longest row, through the compiled model (an input of at most 32 rows runs eagerly:
  tracing would cost more than it saves); a progress line every chunk.
- **NER**: one sentence a line (or a file in the training format, whose tags are ignored); per
  sentence a ``## ID<TAB>sentence`` line, then one line per entity,
  ``type<TAB>start<TAB>end<TAB>text`` (character offsets into the sentence), then a blank line.
- **QA** (KorQuAD): SQuAD v1 JSON in; SQuAD's prediction file out, ``{question_id: answer_text}``.

A LiteRT directory (``export-litert``) of a sentence classifier takes the same input and flags and
writes the same output, with no TensorFlow in the process (:mod:`kcbert_tf.litert.predict`);
``--threads`` sets its threads.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.litert.litert_dir import is_litert_dir
from kcbert_tf.litert.predict import predict_litert_file
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.tasks.registry import task_for_record

__all__ = ["BATCH", "predict_file", "build_arg_parser", "run"]

#: Rows a batch, unless ``--batch-size`` (batches are rows of about one length: larger ones
#: measured slower on this CPU, benchmarks/predict_speed.py).
BATCH = 64


def predict_file(model: str, input: str, output: str | None = None, *, max_seq_length: int | None = None,
                 clean: bool | None = None, batch_size: int = BATCH, text_column: str | None = None,
                 text_pair_column: str | None = None, threads: int | None = None):
    """A task model's predictions for ``input``, written to ``output`` (None: stdout) in the
    task's format; returns what the task returns (counts, entities, answers).  ``max_seq_length``
    and ``clean`` override the model's record for this use (None: keep).  ``model`` may be a
    LiteRT directory (``export-litert``): then no TensorFlow is imported
    (:mod:`kcbert_tf.litert.predict`) and ``threads`` sets LiteRT's threads (None: every core)."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if is_litert_dir(model):
        return predict_litert_file(model, input, output, max_seq_length=max_seq_length, clean=clean,
                                   batch_size=batch_size, text_column=text_column, text_pair_column=text_pair_column,
                                   threads=threads)
    from kcbert_tf.model.presets import load_model

    source = ModelDir.read(model)
    source.require_task()
    record = source.use(max_seq_length=max_seq_length, clean=clean)
    task = task_for_record(record)
    return task.predict_file(load_model(source, record=record), record, input, output, batch_size=batch_size,
                             text_columns=(text_column, text_pair_column))


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kcbert-tf predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="a model directory with a task record: written by `kcbert-tf finetune`, or by "
                        "`kcbert-tf import-hf` from a transformers BertForSequenceClassification, "
                        "BertForTokenClassification or BertForQuestionAnswering; or a LiteRT directory "
                        "written by `kcbert-tf export-litert` (served without TensorFlow)")
    parser.add_argument("--input", required=True, help="sentence tasks: tab-separated, a header line, the record's "
                        "columns; NER: one sentence a line (or a file in the training format); korquad: SQuAD v1 JSON")
    parser.add_argument("--output", default=None, help="where to write the predictions (default: stdout)")
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="cut inputs to this many ids (default: the record's; at most the model's positions)")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"rows (windows, sentences) a batch ({BATCH})")
    parser.add_argument("--no-clean", dest="clean", action="store_const", const=False, default=None,
                        help="do not apply KcBERT's clean() (default: as the record says)")
    parser.add_argument("--text-column", default=None, help="a sentence task: the TSV column of the text (default: the record's)")
    parser.add_argument("--text-pair-column", default=None, help="a sentence-pair task: the column of the second text")
    parser.add_argument("--threads", type=int, default=None,
                        help="a LiteRT directory: the threads LiteRT computes on (default: every core)")
    return parser


def run(argv: Sequence[str] | None = None):
    """``kcbert-tf predict``: the flags parsed into one :func:`predict_file` call; return the
    predictions."""
    return call_with_flags(predict_file, build_arg_parser(), argv)
