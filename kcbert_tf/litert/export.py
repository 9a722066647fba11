"""``kcbert-tf export-litert``: a task model as a LiteRT directory, int8 (default) or fp32,
verified before it is written.

    kcbert-tf export-litert --model runs/nsmc --output runs/nsmc-int8
    kcbert-tf export-litert --model runs/nsmc --output runs/nsmc-fp32 --precision fp32
    kcbert-tf predict --model runs/nsmc-int8 --input reviews.tsv --output predictions.tsv

The model's inference pass (the encoder and its head, on ``token_ids``, ``segment_ids`` and
``padding_mask`` of any batch and length) is traced once, its variables frozen into constants
(``convert_variables_to_constants_v2``: converting a Keras 3 model's SavedModel or concrete function
directly keeps the variables as resource handles and writes a file without its weights) and
converted by ``TFLiteConverter``.  ``int8`` is dynamic-range quantization: every weight matrix is
stored as int8 with a scale per output channel, the activations stay float and are quantized per
row on the fly by XNNPACK's int8 kernels; no calibration data is needed, and the file is a quarter
of fp32's (kcbert-base: 111 MB against 435 MB).

The export verifies itself on a sample of comments (``--sample FILE``, one a line; default: the
project's demo comments), prepared as the model prepares them (KcBERT's ``clean()`` unless
``--no-clean``):

- the ids the LiteRT directory's tokenizer gives (:mod:`kcbert_tf.text.serving_tokenizer`, what
  ``predict`` feeds the model) equal the Keras model's own in-graph packing and transformers'
  ``AutoTokenizer``'s;
- the LiteRT model's probabilities (a softmax of the logits over the classes, or over the positions
  for a question answerer's start and end; a regressor's score) differ from the Keras fp32 model's
  by at most :data:`FP32_BOUND` (fp32) or :data:`INT8_BOUND` (int8).

When either fails, nothing is written and the error says by how much.  The directory
(:mod:`kcbert_tf.litert.litert_dir`) holds ``model.tflite``, ``vocab.txt``, ``config.json``,
``task.json`` and ``litert.json`` (with the verification's numbers).  Sentence classifiers and
regressors, token classifiers (NER) and question answerers export; ``predict`` serves the sentence
models, and an app runs any of them from ``model.tflite`` (``docs/serving.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import tempfile
import time
from importlib import resources
from typing import Sequence

import numpy as np

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.litert.litert_dir import LITERT_INFO_FILE, LITERT_MODEL_FILE, REQUIRES
from kcbert_tf.litert.predict import prepare_texts
from kcbert_tf.litert.runner import LiteRtRunner
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.output_dir import check_output_dir, staged_output
from kcbert_tf.tasks.length_batches import compiled_forward
from kcbert_tf.tasks.sentence.prediction import softmax
from kcbert_tf.text.model_inputs import pack_question_context
from kcbert_tf.text.serving_tokenizer import ServingTokenizer
from kcbert_tf.text.vocab import write_tokenizer_dir

__all__ = ["FP32_BOUND", "INT8_BOUND", "PRECISIONS", "export_litert", "litert_model_bytes", "probabilities"]

PROG = "kcbert-tf export-litert"
PRECISIONS = ("int8", "fp32")

#: The largest difference allowed between the LiteRT model's probabilities (or scores) and the
#: Keras fp32 model's: float rounding for fp32; for int8, what dynamic-range quantization costs
#: on a model that is not broken (measured: 4e-3 on kcbert-base, benchmarks/README.md "int8").
FP32_BOUND = 1e-4
INT8_BOUND = 0.05

#: Comments of the sample the export is verified on (and the longest of the sample besides).
SAMPLE_COMMENTS = 64

#: What each head's output is, for litert.json and apps.
OUTPUTS = {
    "sequence_classification": "logits [batch, classes] (a regressor: score [batch, 1])",
    "token_classification": "logits [batch, length, labels]",
    "question_answering": "start and end logits [batch, length, 2]",
}


def litert_model_bytes(model, precision: str) -> bytes:
    """The LiteRT flatbuffer of a Keras task model's inference pass (inputs ``token_ids``,
    ``segment_ids``, ``padding_mask``: int32 ``[batch, length]``; one float32 output)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in ("token_ids", "segment_ids", "padding_mask")}

    @tf.function(input_signature=[spec])
    def forward(inputs):
        return tf.cast(model(inputs, training=False), tf.float32)

    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], model)
    if precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights, float activations
    return converter.convert()


def probabilities(outputs: np.ndarray, head: str, labels, padding_mask: np.ndarray) -> np.ndarray:
    """What the verification compares: a classifier's class probabilities (per token for a token
    classifier, on real tokens), a question answerer's start and end probabilities over the
    positions, a regressor's score."""
    if head == "sequence_classification" and labels is None:
        return outputs
    if head == "question_answering":
        logits = np.where(padding_mask[:, :, None] > 0, outputs, -np.inf)
        axis = 1
    else:
        logits, axis = outputs, -1
    values = softmax(logits, axis)
    if head == "token_classification":
        values = values * padding_mask[:, :, None]
    return values


def _sample_texts(sample: str | None) -> tuple[list[str], str]:
    if sample is None:
        path = resources.files("kcbert_tf") / "resources" / "demo_comments.txt"
        name = "the demo comments"
    else:
        path, name = pathlib.Path(sample), sample
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--sample {sample}: cannot read it ({error}); give a UTF-8 text file, one comment a line") from None
    if not lines:
        raise UserError(f"--sample {sample}: no comment in it; give a text file, one comment a line")
    return lines[:SAMPLE_COMMENTS] + [max(lines, key=len)], name


def _transformers_ids(vocab: list[str], texts, pairs, max_seq_length: int) -> np.ndarray | None:
    """transformers' ids for the sample, from a tokenizer directory of this vocab (None when
    transformers is not installed)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None

    with tempfile.TemporaryDirectory() as directory:
        tokenizer = AutoTokenizer.from_pretrained(str(write_tokenizer_dir(vocab, directory, max_seq_length)))
    return tokenizer(texts, pairs, truncation=True, max_length=max_seq_length, padding=True, return_tensors="np")["input_ids"]


def _verify(model, source: ModelDir, record, content: bytes, precision: str, sample: str | None) -> dict:
    """Check the serving tokenizer's ids and the LiteRT model's outputs on the sample (see the
    module); the verification's numbers, or a UserError."""
    import tensorflow as tf

    lines, name = _sample_texts(sample)
    texts = [text for text in prepare_texts(lines, record.clean) if text] or ["."]
    pairs = texts[1:] + texts[:1] if record.segments == 2 else None
    preprocessor = model.preprocessor
    reference = None
    if record.head == "question_answering":
        # An app cuts a question and its passage into windows itself (the model's preprocessor does
        # in predict): the model is verified on the in-graph packing of the first window.
        packed = pack_question_context(preprocessor.tokenizer.word_piece, tf.constant(texts), tf.constant(pairs),
                                       record.max_seq_length,
                                       min(record.options.get("max_query_length", 64), record.max_seq_length // 2))
        packed = {key: value.numpy() for key, value in packed.items()}
    else:
        packed = ServingTokenizer(source.vocab, record.max_seq_length, source=source.vocab_path).pack(texts, pairs)
        in_graph = preprocessor.pack(tf.constant(texts), None if pairs is None else tf.constant(pairs), pad=False)
        reference = _transformers_ids(source.vocab, texts, pairs, record.max_seq_length)
        differ = any(not np.array_equal(value.numpy(), packed[key]) for key, value in in_graph.items())
        if differ or (reference is not None and not np.array_equal(reference, packed["token_ids"])):
            raise UserError(f"verification failed: the LiteRT tokenizer's ids differ from the model's own on {name}; "
                            "report it (the vocab may hold tokens the tokenizers library splits differently)")

    keras_outputs = compiled_forward(model)(packed)
    litert_outputs = LiteRtRunner(content, threads=None)(packed)
    mask = packed["padding_mask"]
    expected = probabilities(keras_outputs, record.head, record.labels, mask)
    got = probabilities(litert_outputs, record.head, record.labels, mask)
    difference = float(np.nanmax(np.abs(np.nan_to_num(expected) - np.nan_to_num(got))))
    bound = INT8_BOUND if precision == "int8" else FP32_BOUND
    if record.head == "sequence_classification" and record.labels is None:
        bound *= max(1.0, float(np.abs(expected).max()))  # a regressor: relative to its scores
    agreement = float((expected.argmax(-1) == got.argmax(-1)).mean()) if record.labels is not None else None
    if not difference <= bound:
        raise UserError(
            f"verification failed: the {precision} LiteRT model's {'scores' if record.labels is None else 'probabilities'} "
            f"differ from the Keras model's by {difference:.3g} on {name}, more than the bound {bound:.3g}; "
            + ("export with --precision fp32 instead" if precision == "int8" else "report it")
        )
    return {"sample": name, "texts": len(texts), "ids_equal_in_graph": record.head != "question_answering",
            "ids_equal_transformers": reference is not None,
            "max_difference": difference, "bound": bound, "label_agreement": agreement}


def export_litert(model: str | os.PathLike, output: str | os.PathLike, *, precision: str = "int8",
                  max_seq_length: int | None = None, clean: bool | None = None, sample: str | None = None,
                  overwrite: bool = False) -> dict:
    """Write the LiteRT directory of a task model directory to ``output`` (see the module);
    return what ``litert.json`` says.  Raises :class:`~kcbert_tf.errors.UserError`."""
    from kcbert_tf.model.presets import load_model

    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision}: choose {' or '.join(PRECISIONS)}")
    output_path = check_output_dir(os.fspath(output), overwrite)
    model_dir = os.fspath(model)
    source = ModelDir.read(model_dir)
    record = source.use(max_seq_length=max_seq_length, clean=clean)
    if record.head not in OUTPUTS:
        raise UserError(f"--model {model_dir}: a {source.config.architecture} (no task head); export-litert takes a "
                        "fine-tuned task model (`kcbert-tf finetune`, or a transformers head from `import-hf`)")
    keras_model = load_model(source, record=record)
    started = time.monotonic()
    print(f"export-litert: converting {model_dir} ({precision}; about 2 minutes and 12 GB of memory for kcbert-base)", flush=True)
    content = litert_model_bytes(keras_model, precision)
    converted_s = time.monotonic() - started
    verification = _verify(keras_model, source, record, content, precision, sample)
    labels = record.labels
    info = {
        "kind": {"sequence_classification": "classifier" if labels is not None else "regressor",
                 "token_classification": "token_classifier", "question_answering": "question_answerer"}[record.head],
        "head": record.head,
        "precision": precision,
        "quantization": "dynamic range: int8 weights (per channel), float activations" if precision == "int8" else None,
        "inputs": ["token_ids", "segment_ids", "padding_mask"],
        "output": OUTPUTS[record.head],
        "requires": list(REQUIRES),
        "source": model_dir,
        "model_bytes": len(content),
        "verification": verification,
    }
    try:
        with staged_output(output_path) as staged:
            (staged / LITERT_MODEL_FILE).write_bytes(content)
            shutil.copy(source.config_path, staged / "config.json")
            shutil.copy(source.vocab_path, staged / "vocab.txt")
            record.write(str(staged))
            (staged / LITERT_INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as error:
        raise UserError(f"--output {output_path}: cannot write it ({error})") from None
    agreement = verification["label_agreement"]
    print(f"export-litert: wrote {output_path} ({info['kind']}, {precision}, {len(content) / 2**20:,.1f} MiB, "
          f"converted in {converted_s:.0f} s); verified on {verification['texts']} comments of {verification['sample']}: "
          + (f"ids equal the model's{' and transformers' if verification['ids_equal_transformers'] else ''}, "
             if verification["ids_equal_in_graph"] else "")
          + f"{'scores' if labels is None else 'probabilities'} within {verification['max_difference']:.2g} of the "
          f"Keras model's (bound {verification['bound']:.2g})"
          + ("" if agreement is None else f", labels agree on {agreement:.1%}"), flush=True)
    return info


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a task model directory (finetune's, or import-hf's of a "
                        "transformers head)")
    parser.add_argument("--output", required=True, help="the LiteRT directory to write (local)")
    parser.add_argument("--precision", choices=PRECISIONS, default="int8",
                        help="int8: dynamic-range quantized weights, a quarter of the size (default); fp32: as trained")
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="the record's max length for this export (default: the model's record)")
    parser.add_argument("--no-clean", dest="clean", action="store_const", const=False, default=None,
                        help="serve texts as given, not through KcBERT's clean() (default: as the record says)")
    parser.add_argument("--sample", default=None, help="comments to verify the export on, one a line "
                        "(default: the project's demo comments)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --output if it exists and is not empty (only once the new one is verified)")
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf export-litert``: the flags parsed into one :func:`export_litert` call."""
    return call_with_flags(export_litert, build_arg_parser(), argv)
