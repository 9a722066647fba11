"""``kcbert-tf predict``: a task model's predictions for a file.

    kcbert-tf predict --model runs/kcbert-base-nsmc --input reviews.tsv --output predictions.tsv
    kcbert-tf predict --model runs/kcbert-base-ner --input sentences.txt --output entities.txt
    kcbert-tf predict --model runs/kcbert-base-korquad --input questions.json --output predictions.json

The model directory's task record (``task.json``, written by ``finetune`` and by ``import-hf`` for
a transformers head) names the task; the task registry (:mod:`kcbert_tf.tasks.registry`) gives
the task class whose ``predict_file`` reads the input and writes the predictions
(:mod:`kcbert_tf.tasks.contract`).  The flags override the record for this use:
``--max-seq-length``, ``--batch-size``, ``--no-clean`` and, for a TSV, ``--text-column`` /
``--text-pair-column``.  The formats:

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
"""

from __future__ import annotations

import argparse
from typing import Sequence

from kcbert_tf.errors import UserError

__all__ = ["build_arg_parser", "read_task_model", "run"]

#: Rows a batch, unless ``--batch-size`` (batches are rows of about one length: larger ones
#: measured slower on this CPU, benchmarks/predict_speed.py).
BATCH = 64


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kcbert-tf predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="a model directory with a task record: written by `kcbert-tf finetune`, or by "
                        "`kcbert-tf import-hf` from a transformers BertForSequenceClassification, "
                        "BertForTokenClassification or BertForQuestionAnswering")
    parser.add_argument("--input", required=True, help="sentence tasks: tab-separated, a header line, the record's "
                        "columns; NER: one sentence a line (or a file in the training format); korquad: SQuAD v1 JSON")
    parser.add_argument("--output", default=None, help="where to write the predictions (default: stdout)")
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="cut inputs to this many ids (default: the record's; at most the model's positions)")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"rows (windows, sentences) a batch ({BATCH})")
    parser.add_argument("--no-clean", action="store_true", help="do not apply KcBERT's clean() (default: as the record says)")
    parser.add_argument("--text-column", default=None, help="a sentence task: the TSV column of the text (default: the record's)")
    parser.add_argument("--text-pair-column", default=None, help="a sentence-pair task: the column of the second text")
    return parser


def read_task_model(model: str, *, max_seq_length: int | None = None, no_clean: bool = False,
                    text_column: str | None = None, text_pair_column: str | None = None):
    """The model directory, its task record with the overrides applied and checked, and the
    registered task class: what every use of a task model starts from (``predict``, and any
    caller that wants the same defaults)."""
    import dataclasses

    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.tasks.registry import task_class
    from kcbert_tf.text.model_inputs import check_sequence_length

    source = ModelDir.read(model)
    task = source.require_task()
    columns = None
    if text_column or text_pair_column:
        if task.columns is None:
            raise UserError(f"--text-column / --text-pair-column apply to sentence tasks; {model} is a {task.task} model")
        columns = dataclasses.replace(task.columns, text=text_column or task.columns.text,
                                      text_pair=text_pair_column or task.columns.text_pair)
    task = task.with_overrides(max_seq_length=max_seq_length, clean=False if no_clean else None, columns=columns)
    check_sequence_length(task.max_seq_length, source.config.max_position_embeddings, source=source.config_path,
                          at_least=task.min_seq_length)
    return source, task, task_class(task.task)


def run(argv: Sequence[str] | None = None):
    """Predict from command-line arguments; return the predictions."""
    args = build_arg_parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    source, task, cls = read_task_model(args.model, max_seq_length=args.max_seq_length, no_clean=args.no_clean,
                                        text_column=args.text_column, text_pair_column=args.text_pair_column)
    return cls.predict_file(source, task, args.input, args.output, batch_size=args.batch_size)
