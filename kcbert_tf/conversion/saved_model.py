"""Export a model directory as a TensorFlow SavedModel that takes raw strings (TF Serving, TF Hub).

The SavedModel holds the in-graph tokenizer (:class:`~kcbert_tf.text.tokenizer.KcBertTokenizer`),
BERT packing and the encoder with its MLM head, so a caller needs only ``tensorflow`` and
``tensorflow_text`` (for its ops) to use it::

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer's ops)
    model = tf.saved_model.load("kcbert-sm")
    out = model.signatures["serving_default"](text=tf.constant(["댓글 하나", "둘"]))
    out = model.signatures["pair"](text_a=tf.constant(["질문"]), text_b=tf.constant(["답"]))

Two signatures, each over a batch of strings:

- ``serving_default(text)``: ``[CLS] text [SEP]``, segment ids 0;
- ``pair(text_a, text_b)``: ``[CLS] a [SEP] b [SEP]``, segment ids 0 then 1.

The ids are exactly those of ``transformers.AutoTokenizer(...)(texts, padding=True,
truncation=True, max_length=N)`` (and of the pair form): a text is truncated to ``N - 2`` ids,
a pair to ``N - 3`` by transformers' ``longest_first`` rule
(:func:`~kcbert_tf.text.model_inputs.trim_pair_lengths`), and a batch
is padded to its longest sequence.  Outputs (float32): ``sequence_output [B, L, H]``,
``pooled_output [B, H]``, ``mlm_logits [B, L, V]`` (the MLM head at every position), and the
packing, ``token_ids``, ``segment_ids``, ``padding_mask`` (int32 ``[B, L]``).

``assets/`` also holds the model's ``config.json`` and ``vocab.txt`` and an ``export.json`` (the
max sequence length, the signatures), so the export describes itself.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
from typing import Sequence

from kcbert_tf.errors import UserError
from kcbert_tf.output_dir import check_output_dir, staged_output
from kcbert_tf.text.model_inputs import pack_pair, pack_single

__all__ = ["PROG", "export_saved_model"]

PROG = "kcbert-tf export-savedmodel"
EXPORT_INFO_FILE = "export.json"
#: ``[CLS] a [SEP] b [SEP]``: the shortest ``--max-seq-length`` that leaves room for a pair.
MIN_INPUT_LENGTH = 3


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


# --- The export ---------------------------------------------------------------------------------


def _load(model_dir: str, max_seq_length: int | None):
    """The config, the checked max sequence length, the model and the tokenizer of a model dir."""
    from kcbert_tf.model.model_dir import ModelDir

    source = ModelDir.read(model_dir)
    config = source.config
    limit = config.max_position_embeddings
    if max_seq_length is None:
        max_seq_length = limit
    if max_seq_length > limit:
        raise UserError(
            f"--max-seq-length {max_seq_length} is more than max_position_embeddings {limit} of "
            f"{source.config_path}; pass {limit} or less (or leave it out)"
        )
    if max_seq_length < MIN_INPUT_LENGTH:
        raise UserError(
            f"--max-seq-length {max_seq_length} leaves no room for text: [CLS] a [SEP] b [SEP] "
            f"needs at least {MIN_INPUT_LENGTH}; pass {MIN_INPUT_LENGTH} to {limit}"
        )
    model = source.load_masked_lm()
    tokenizer = source.tokenizer()
    return config, max_seq_length, model, tokenizer


def _write(model, tokenizer, max_seq_length: int, directory: str) -> None:
    """Trace both signatures and write the SavedModel to ``directory``."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    # Not archive.track(model): the endpoints' variables are saved anyway, and tracking the model
    # would save every weight a second time (its Keras variables beside the tf.Variables the
    # traced functions capture), doubling the SavedModel.
    archive.track(tokenizer)

    def single(text):
        return _encode(model, pack_single(tokenizer, text, max_seq_length))

    def pair(text_a, text_b):
        return _encode(model, pack_pair(tokenizer, text_a, text_b, max_seq_length))

    archive.add_endpoint(
        "serving_default", single, input_signature=[tf.TensorSpec([None], tf.string, name="text")]
    )
    archive.add_endpoint(
        "pair",
        pair,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text_a"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ],
    )
    archive.write_out(directory, verbose=False)


def _size(directory: pathlib.Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def export_saved_model(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    max_seq_length: int | None = None,
    overwrite: bool = False,
) -> str:
    """Write the SavedModel of a model directory to ``output`` (default length: the config's
    ``max_position_embeddings``); return ``output``.  Raises :class:`~kcbert_tf.errors.UserError`."""
    import tensorflow as tf

    output_path = check_output_dir(os.fspath(output), overwrite)
    model_dir = os.fspath(model_dir)
    config, max_seq_length, model, tokenizer = _load(model_dir, max_seq_length)
    try:
        with staged_output(output_path) as staged:
            _write(model, tokenizer, max_seq_length, str(staged))
            assets = staged / "assets"
            assets.mkdir(exist_ok=True)
            for name in ("config.json", "vocab.txt"):
                tf.io.gfile.copy(os.path.join(model_dir, name), str(assets / name), overwrite=True)
            info = {
                "max_seq_length": max_seq_length,
                "vocab_size": config.vocab_size,
                "hidden_size": config.hidden_size,
                "signatures": {
                    "serving_default": {"inputs": ["text"]},
                    "pair": {"inputs": ["text_a", "text_b"]},
                },
                "outputs": ["sequence_output", "pooled_output", "mlm_logits", "token_ids",
                            "segment_ids", "padding_mask"],
                "requires": ["tensorflow", "tensorflow_text"],
            }
            (assets / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
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
        help="truncate [CLS] ... [SEP] to this many ids (default: the config's "
        "max_position_embeddings, 300 for KcBERT)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace --output if it exists and is not empty (only once the new one is complete)",
    )
    return parser


def run(argv: Sequence[str] | None = None) -> str:
    """Run the command; return the output directory."""
    args = build_arg_parser().parse_args(argv)
    started = time.monotonic()
    print(f"exporting {args.model_dir} to {args.output}", flush=True)
    output = export_saved_model(args.model_dir, args.output, args.max_seq_length, args.overwrite)
    info = json.loads((pathlib.Path(output) / "assets" / EXPORT_INFO_FILE).read_text("utf-8"))
    print(
        f"wrote {output}/ ({_size(pathlib.Path(output)) / 2**20:,.1f} MiB) in "
        f"{time.monotonic() - started:.1f} s: signatures serving_default(text) and "
        f"pair(text_a, text_b), max {info['max_seq_length']} ids; load it with "
        "`import tensorflow_text` and tf.saved_model.load",
        flush=True,
    )
    return output


if __name__ == "__main__":
    run()
