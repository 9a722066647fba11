"""Export a model directory as a TensorFlow SavedModel that takes raw strings (TF Serving, TF Hub).

The SavedModel holds the model's own preprocessor (:mod:`kcbert_tf.model.presets`: KcBERT's
``clean()`` when the model was trained so, the in-graph tokenizer with transformers' ids, BERT
packing) and the model, so a caller needs only ``tensorflow`` and ``tensorflow_text`` (for its
ops) to use it::

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer's ops)
    model = tf.saved_model.load("kcbert-sm")
    out = model.signatures["serving_default"](text=tf.constant(["댓글 하나", "둘"]))
    out = model.signatures["pair"](text_a=tf.constant(["질문"]), text_b=tf.constant(["답"]))

Two signatures, each over a batch of strings:

- ``serving_default(text)``: ``[CLS] text [SEP]``, segment ids 0;
- ``pair(text_a, text_b)``: ``[CLS] a [SEP] b [SEP]``, segment ids 0 then 1.

Two more, ``lengths(text)`` and ``pair_lengths(text_a, text_b)``, return ``num_ids`` (int32
``[B]``): how many ids each input packs to, from the tokenizer alone.  A batch costs what its
longest row costs, so a caller with many texts of mixed lengths batches by length::

    n = model.signatures["lengths"](text=texts)["num_ids"].numpy()
    order = np.argsort(n)                      # neighbours in length share a batch
    for start in range(0, len(order), 64):
        chosen = order[start : start + 64]
        out = model.signatures["serving_default"](text=tf.gather(texts, chosen))

(``kcbert-tf predict`` does the same with the Keras model.)

The ids are exactly those of ``transformers.AutoTokenizer(...)(texts, padding=True,
truncation=True, max_length=N)`` (and of the pair form): a text is truncated to ``N - 2`` ids,
a pair to ``N - 3`` by transformers' ``longest_first`` rule
(:func:`~kcbert_tf.text.model_inputs.trim_pair_lengths`), and a batch is padded to its longest
sequence.  Every output also holds the packing, ``token_ids``, ``segment_ids``, ``padding_mask``
(int32 ``[B, L]``).

- A **masked LM** (``pretrain``, ``import-hf``) takes the texts as they are (clean them first
  with ``clean()``, as its training data was) and returns (float32) ``sequence_output [B, L, H]``,
  ``pooled_output [B, H]`` and ``mlm_logits [B, L, V]`` (the MLM head at every position);
  ``N`` defaults to ``max_position_embeddings``.
- A **sequence classifier** (``finetune``, or ``import-hf`` of a transformers
  ``BertForSequenceClassification``) applies KcBERT's ``clean()`` in the graph, exactly
  (:func:`~kcbert_tf.text.cleaning_in_graph.clean_in_graph`), when its task record says so
  (``--no-clean`` overrides it), and returns ``label`` (string ``[B]``, the ``id2label`` name), ``label_id`` (int32 ``[B]``),
  ``probabilities`` and ``logits`` (float32 ``[B, C]``); a regressor (KorSTS) returns ``score``
  (float32 ``[B]``).  ``N`` defaults to its task record's max sequence length.

The length and the cleaning are the model directory's use settings
(:meth:`~kcbert_tf.model.model_dir.ModelDir.use`), overridden by ``--max-seq-length`` and
``--no-clean``.

Which heads export, and their outputs, is :data:`SIGNATURE_OUTPUTS` (by the head names of
:mod:`kcbert_tf.model.heads`); token classifiers and question answerers export to transformers
with ``export-hf`` instead.

``assets/`` also holds the model's ``config.json``, ``vocab.txt`` and ``task.json`` (the task
record the export was made with: length, cleaning, labels) and an ``export.json`` (the kind, the
signatures and the outputs), so the export describes itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import time
from typing import Callable, Sequence

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import TASK_FILE
from kcbert_tf.output_dir import check_output_dir, staged_output

__all__ = ["PROG", "export_saved_model"]

PROG = "kcbert-tf export-savedmodel"
EXPORT_INFO_FILE = "export.json"
PACKING = ("token_ids", "segment_ids", "padding_mask")


def _classify(model, inputs: dict, labels: list | None) -> dict:
    """A fine-tuned classifier's label, label id, probabilities and logits (or a regressor's
    score) on packed inputs."""
    import tensorflow as tf

    logits = tf.cast(model(inputs, training=False), tf.float32)
    if labels is None:
        return {"score": logits[:, 0], **inputs}
    label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return {
        "label": tf.gather(tf.constant(labels), label_id),
        "label_id": label_id,
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "logits": logits,
        **inputs,
    }


def _encode(model, inputs: dict) -> dict:
    """The encoder and the MLM head at every position on packed inputs; float32 outputs."""
    import tensorflow as tf

    outputs = model.backbone(inputs, training=False)
    sequence = outputs["sequence_output"]
    shape = tf.shape(inputs["token_ids"])
    every_position = tf.broadcast_to(tf.range(shape[1], dtype=tf.int32)[tf.newaxis], shape)
    logits = model.masked_lm_head(sequence, mask_positions=every_position, training=False)
    return {
        "sequence_output": tf.cast(sequence, tf.float32),
        "pooled_output": tf.cast(outputs["pooled_output"], tf.float32),
        "mlm_logits": tf.cast(logits, tf.float32),
        **inputs,
    }


@dataclasses.dataclass(frozen=True)
class HeadSignatures:
    """What the signatures of a head's SavedModel return: ``produce(model, inputs, labels)`` on
    packed inputs, the outputs' names and the export's kind, and, for a model with labels (a
    classifier rather than a regressor), the labelled outputs and kind."""

    produce: Callable
    outputs: tuple[str, ...]
    kind: str
    labelled_outputs: tuple[str, ...] = ()
    labelled_kind: str = ""

    def outputs_for(self, labels) -> list[str]:
        return list(self.outputs if labels is None else self.labelled_outputs)

    def kind_for(self, labels) -> str:
        return self.kind if labels is None else self.labelled_kind


#: head → its signatures' outputs (the heads a SavedModel is exported for).
SIGNATURE_OUTPUTS = {
    "masked_lm": HeadSignatures(lambda model, inputs, labels: _encode(model, inputs),
                                ("sequence_output", "pooled_output", "mlm_logits"), "masked_lm"),
    "sequence_classification": HeadSignatures(_classify, ("score",), "regressor",
                                              ("label", "label_id", "probabilities", "logits"), "classifier"),
}


# --- The export ---------------------------------------------------------------------------------


def _write(model, signatures: HeadSignatures, directory: str) -> None:
    """Trace the signatures of ``model`` (its preprocessor, then the head's outputs) and write the
    SavedModel to ``directory``."""
    import keras
    import tensorflow as tf

    preprocessor, labels = model.preprocessor, model.labels

    def outputs(inputs, **texts):
        return {**signatures.produce(model, inputs, labels), **texts}

    archive = keras.export.ExportArchive()
    # Not archive.track(model): the endpoints' variables are saved anyway, and tracking the model
    # would save every weight a second time (its Keras variables beside the tf.Variables the
    # traced functions capture), doubling the SavedModel.
    archive.track(preprocessor.tokenizer.word_piece)

    def single(text):
        text = preprocessor.prepare(text)
        return outputs(preprocessor.pack(text, pad=False), text=text)

    def pair(text_a, text_b):
        text_a, text_b = preprocessor.prepare(text_a), preprocessor.prepare(text_b)
        return outputs(preprocessor.pack(text_a, text_b, pad=False), text_a=text_a, text_b=text_b)

    # For callers that batch by length (the outputs cost what the padded batch costs): the number
    # of ids each text (pair) packs to, from the tokenizer alone.
    def lengths(text):
        packed = preprocessor.pack(preprocessor.prepare(text), pad=False)
        return {"num_ids": tf.reduce_sum(packed["padding_mask"], axis=1)}

    def pair_lengths(text_a, text_b):
        packed = preprocessor.pack(preprocessor.prepare(text_a), preprocessor.prepare(text_b), pad=False)
        return {"num_ids": tf.reduce_sum(packed["padding_mask"], axis=1)}

    text = tf.TensorSpec([None], tf.string, name="text")
    text_a, text_b = tf.TensorSpec([None], tf.string, name="text_a"), tf.TensorSpec([None], tf.string, name="text_b")
    archive.add_endpoint("serving_default", single, input_signature=[text])
    archive.add_endpoint("pair", pair, input_signature=[text_a, text_b])
    archive.add_endpoint("lengths", lengths, input_signature=[text])
    archive.add_endpoint("pair_lengths", pair_lengths, input_signature=[text_a, text_b])
    archive.write_out(directory, verbose=False)


def _size(directory: pathlib.Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def export_saved_model(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    max_seq_length: int | None = None,
    clean: bool | None = None,
    overwrite: bool = False,
) -> str:
    """Write the SavedModel of a model directory to ``output``; return ``output``.  The length and
    the cleaning are the directory's (its task record's; a masked LM: its full positions, texts as
    given) unless given.  Raises :class:`~kcbert_tf.errors.UserError`."""
    import tensorflow as tf

    from kcbert_tf.model.presets import load_model

    output_path = check_output_dir(os.fspath(output), overwrite)
    model_dir = os.fspath(model_dir)
    source = ModelDir.read(model_dir)
    config = source.config
    if config.head not in SIGNATURE_OUTPUTS:
        raise UserError(
            f"{model_dir} holds a {config.architecture}: export-savedmodel takes a "
            f"{' or '.join(sorted(SIGNATURE_OUTPUTS))} model; export it with `kcbert-tf export-hf` "
            "(transformers) instead"
        )
    record = source.use(max_seq_length=max_seq_length, clean=clean)
    signatures = SIGNATURE_OUTPUTS[config.head]
    model = load_model(source, record=record)
    print(f"exporting {model_dir} to {output_path}", flush=True)
    try:
        with staged_output(output_path) as staged:
            _write(model, signatures, str(staged))
            assets = staged / "assets"
            assets.mkdir(exist_ok=True)
            for name in ("config.json", "vocab.txt"):
                tf.io.gfile.copy(os.path.join(model_dir, name), str(assets / name), overwrite=True)
            record.write(str(assets))
            info = {
                "kind": signatures.kind_for(config.labels),
                "signatures": {
                    "serving_default": {"inputs": ["text"]},
                    "pair": {"inputs": ["text_a", "text_b"]},
                    "lengths": {"inputs": ["text"], "outputs": ["num_ids"]},
                    "pair_lengths": {"inputs": ["text_a", "text_b"], "outputs": ["num_ids"]},
                },
                "outputs": signatures.outputs_for(config.labels) + list(PACKING) + ["text"],
                "requires": ["tensorflow", "tensorflow_text"],
            }
            (assets / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as error:
        raise UserError(f"--output {output_path}: cannot write it ({error})") from None
    return str(output_path)


# --- The command --------------------------------------------------------------------------------


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export a model directory as a TensorFlow SavedModel whose signatures take "
        "raw strings (in-graph tokenizer): serving_default(text) and pair(text_a, text_b).",
    )
    parser.add_argument(
        "--model-dir", required=True,
        help="a model directory (config.json, vocab.txt, model.weights.h5; local or gs://)",
    )
    parser.add_argument("--output", required=True, help="the local SavedModel directory to write")
    parser.add_argument(
        "--max-seq-length", type=_int, default=None,
        help="truncate [CLS] ... [SEP] to this many ids (default: a classifier's task record's "
        "max sequence length, else the config's max_position_embeddings, 300 for KcBERT)",
    )
    parser.add_argument(
        "--no-clean", dest="clean", action="store_const", const=False, default=None,
        help="take the texts as given, not through clean() in the graph (default: as its task record says)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace --output if it exists and is not empty (only once the new one is complete)",
    )
    return parser


def run(argv: Sequence[str] | None = None) -> str:
    """``kcbert-tf export-savedmodel``: the flags parsed into one :func:`export_saved_model` call;
    say what was written; return the output directory."""
    started = time.monotonic()
    output = call_with_flags(export_saved_model, build_arg_parser(), argv)
    assets = pathlib.Path(output) / "assets"
    info = json.loads((assets / EXPORT_INFO_FILE).read_text("utf-8"))
    record = json.loads((assets / TASK_FILE).read_text("utf-8"))
    print(
        f"wrote {output}/ ({_size(pathlib.Path(output)) / 2**20:,.1f} MiB, {info['kind']}) in "
        f"{time.monotonic() - started:.1f} s: signatures serving_default(text), "
        f"pair(text_a, text_b), lengths(text), pair_lengths(text_a, text_b), max {record['max_seq_length']} ids, "
        f"{'clean() in the graph' if record['clean'] else 'texts as given'}; outputs "
        f"{', '.join(name for name in info['outputs'] if name not in (*PACKING, 'text'))}; load it with "
        "`import tensorflow_text` and tf.saved_model.load",
        flush=True,
    )
    return output


if __name__ == "__main__":
    run()
