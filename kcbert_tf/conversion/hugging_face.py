"""``kcbert-tf export-hf`` and ``import-hf``: model directories to and from Hugging Face, verified.

Export writes what ``transformers`` loads offline with its ``Auto`` class for the model's head
(:mod:`kcbert_tf.model.heads`: ``AutoModelForMaskedLM``, ``…ForSequenceClassification``,
``…ForTokenClassification``, ``…ForQuestionAnswering``) and ``AutoTokenizer.from_pretrained(DIR)``:
``config.json``, ``model.safetensors`` (float32, tied decoder as transformers saves it, the pooler
included), ``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``, a model card
``README.md`` and, for a task model, its task record ``task.json`` (transformers ignores it).
Import reads ``BertForMaskedLM``, ``BertForPreTraining`` and ``BertModel`` checkpoints and the
three task heads into a model directory (``ModelDir.read``, ``pretrain --init``, ``finetune
--init`` and ``export-hf`` take it); a task head gets its task record back from ``task.json``, or
one with defaults (:meth:`kcbert_tf.model.task_record.TaskRecord.default`: the full length, the
registry's task for the head), so ``predict`` and ``from_preset`` can use it.  Both verify before they finish: the written result is loaded back, a fixed batch of comments
goes through the Keras model and the transformers model, and the logits (for a bare ``BertModel``,
the last hidden states) must agree within :data:`TOLERANCE`; the output directory is staged under
a temporary name and renamed only then.

Example::

    kcbert-tf export-hf --model-dir runs/kcbert-base --output hf/kcbert-base
    kcbert-tf import-hf --input ~/models/beomi-kcbert-base --output models/kcbert-base
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from typing import Sequence

import numpy as np

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.heads import MASKED_LM, head
from kcbert_tf.model.model_dir import WEIGHTS_FILE, ModelDir, check_vocab_matches
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.output_dir import check_output_dir, staged_output
from kcbert_tf.text.cleaning import clean
from kcbert_tf.text.vocab import read_vocab, write_tokenizer_dir

__all__ = ["TOLERANCE", "ENCODER", "export_hf", "import_hf", "is_hf_directory", "read_model_or_hf", "run_export",
           "run_import", "build_export_parser", "build_import_parser"]

_LOG = logging.getLogger(__name__)

#: Largest allowed difference between Keras and transformers outputs (float32).
TOLERANCE = 1e-4

#: How many comments of the demo corpus make the verification batch, and their length.
VERIFY_TEXTS = 8
VERIFY_LENGTH = 64


def verification_ids(vocab: list[str], max_seq_length: int, word_piece=None) -> np.ndarray:
    """A fixed batch: the first comments of the demo corpus, tokenized with the in-graph tokenizer
    (``word_piece``, the vocab's ``KcBertWordPiece`` if one is at hand), as ``[CLS] ids [SEP]``
    padded with ``[PAD]``."""
    from kcbert_tf.text.tokenizer import KcBertWordPiece

    corpus = resources.files("kcbert_tf") / "resources" / "demo_comments.txt"
    lines = [clean(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = lines[:VERIFY_TEXTS - 1] + [max(lines, key=len)]
    tokenizer = word_piece or KcBertWordPiece(vocab)
    length = min(max_seq_length, VERIFY_LENGTH)
    batch = np.zeros((len(texts), length), dtype=np.int64)
    for row, ids in enumerate(tokenizer.encode(texts)):
        ids = [tokenizer.cls_id] + ids[: length - 2] + [tokenizer.sep_id]
        batch[row, : len(ids)] = ids
    return batch


#: What is compared for a checkpoint without a head (a bare ``BertModel``): the encoder's last
#: hidden states.  With a head, the head's outputs (:mod:`kcbert_tf.model.heads`): the MLM logits
#: at every position, a classifier's logits, a token classifier's at every position, a question
#: answerer's start and end logits.
ENCODER = "encoder"


def keras_outputs(model, ids: np.ndarray, compared: str) -> np.ndarray:
    """The Keras model's outputs for ``ids``: its head's (``compared`` is the head's name) or,
    for :data:`ENCODER`, the encoder's last hidden states."""
    inputs = {
        "token_ids": ids.astype("int32"),
        "segment_ids": np.zeros_like(ids, dtype="int32"),
        "padding_mask": (ids != 0).astype("int32"),
    }
    # One small batch: called eagerly, as tracing a predict function would cost more than it saves.
    if compared == ENCODER:
        return np.asarray(model.backbone(inputs, training=False)["sequence_output"])
    if compared == MASKED_LM:  # the MLM head at every position
        inputs["mask_positions"] = np.tile(np.arange(ids.shape[1], dtype="int32"), (ids.shape[0], 1))
    return np.asarray(model(inputs, training=False))


def transformers_outputs(directory: str, ids: np.ndarray, compared: str) -> dict[str, np.ndarray]:
    """The checkpoint in ``directory`` loaded by transformers (PyTorch) on ``ids``: its last hidden
    states (``ENCODER``) and, with a head (``compared`` is the head's name), the head's outputs."""
    import torch
    import transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.logging.set_verbosity_error()  # the pooler, unused by BertForMaskedLM, is expected
    entry = None if compared == ENCODER else head(compared)
    loader = getattr(transformers, entry.auto_class if entry else "AutoModel")
    hf = loader.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(ids), attention_mask=torch.tensor((ids != 0).astype("int64")),
                 output_hidden_states=True)
    found = {ENCODER: out.hidden_states[-1].numpy()}
    if entry is not None:
        outputs = [getattr(out, name) for name in entry.hf_outputs]
        found[compared] = (outputs[0] if len(outputs) == 1 else torch.stack(outputs, dim=-1)).numpy()
    return found


def _write_transformers_outputs(directory: str, compared: str, scratch: str) -> None:
    """The child process of :class:`TransformersReference`: ``scratch/ids.npy`` in, one ``.npy``
    per output out."""
    import torch

    if hasattr(os, "nice"):
        os.nice(10)  # the parent's work (converting, training) comes first; this one takes what is left
    torch.set_num_threads(1)  # a batch of 8: the parent has the cores
    for name, value in transformers_outputs(directory, np.load(os.path.join(scratch, "ids.npy")), compared).items():
        np.save(os.path.join(scratch, f"{name}.npy"), value)


class TransformersReference:
    """transformers' outputs for the verification batch, computed in a child process started
    here: torch and transformers load there (about 5 s) while this process goes on converting,
    reading data and tracing.  :meth:`outputs` waits for them; :meth:`close` ends the child.

    ``compared``: :data:`ENCODER`, or the checkpoint's head (its outputs and the encoder's)."""

    def __init__(self, directory: str, ids: np.ndarray, compared: str):
        self.directory, self.ids, self.compared = directory, ids, compared
        self._scratch = tempfile.mkdtemp(prefix="kcbert-tf-verify-")
        np.save(os.path.join(self._scratch, "ids.npy"), ids)
        code = ("import sys; from kcbert_tf.conversion.hugging_face import _write_transformers_outputs as write; "
                "write(*sys.argv[1:])")
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
                       "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._process = subprocess.Popen([sys.executable, "-c", code, directory, compared, self._scratch],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment)

    def done(self) -> bool:
        """Whether the child has ended (:meth:`outputs` would not wait)."""
        return self._process.poll() is not None

    def outputs(self) -> dict[str, np.ndarray]:
        """``{ENCODER: ..., head: ...}`` once the child is done; a :class:`UserError` if it failed."""
        _, errors = self._process.communicate()
        if self._process.returncode != 0:
            last = " ".join(line.strip() for line in errors.strip().splitlines()[-3:])
            raise UserError(f"verification failed: transformers could not run {self.directory} ({last}); "
                            "nothing was written")
        return {name[: -len(".npy")]: np.load(os.path.join(self._scratch, name))
                for name in os.listdir(self._scratch) if name != "ids.npy"}

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> "TransformersReference":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _words(compared: str) -> str:
    return "last hidden states" if compared == ENCODER else head(compared).compared


def check_agreement(keras_values: np.ndarray, reference: TransformersReference, compared: str) -> float:
    """Compare the Keras model's outputs (:func:`keras_outputs` on ``reference.ids``) with
    transformers'; fail when they differ by more than TOLERANCE."""
    what = _words(compared)
    difference = float(np.abs(keras_values - reference.outputs()[compared]).max())
    _LOG.info("verified: %s differ by at most %.2e over %d comments", what, difference, len(reference.ids))
    if not difference <= TOLERANCE:
        raise UserError(
            f"verification failed: the Keras and transformers {what} differ by up to {difference:.3e} "
            f"(allowed {TOLERANCE:g}); nothing was written"
        )
    return difference


def model_card(config, model_dir: str) -> str:
    """A short README.md: what the model is, its config, how it was trained, how to load it."""
    state_path = os.path.join(model_dir, "training_state.json")
    training = ""
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        train = state.get("train_config", {})
        history = state.get("history", {})
        training = (
            f"\n## Training\n\nPretrained with `kcbert-tf pretrain` (masked LM, dynamic masking): "
            f"{state.get('steps', '?'):,} steps, global batch {train.get('batch_size', '?')} x "
            f"{state.get('seq_length', '?')} tokens, peak learning rate {train.get('learning_rate', '?')}, "
            f"{state.get('mixed_precision') or 'float32'}, on {state.get('device', '?')}."
        )
        if history.get("loss"):
            training += f" Final MLM loss {history['loss'][-1]:.3f}, accuracy {history['accuracy'][-1]:.3f}."
        if history.get("val_loss"):
            training += f" Eval MLM loss {history['val_loss'][-1]:.3f}, accuracy {history['val_accuracy'][-1]:.3f}."
        training += "\n"
    return f"""---
language: ko
tags:
- bert
- fill-mask
- kcbert
- kcbert-tf
pipeline_tag: fill-mask
---

# KcBERT ({config.num_hidden_layers} layers, {config.hidden_size} hidden)

A BERT masked language model for Korean news comments (the KcBERT recipe), trained with
[kcbert-tf](https://github.com/) (TensorFlow/Keras, KerasHub) and exported to transformers.

| field | value |
| --- | --- |
| layers x hidden x heads | {config.num_hidden_layers} x {config.hidden_size} x {config.num_attention_heads} |
| intermediate size | {config.intermediate_size} |
| vocabulary | {config.vocab_size:,} cased WordPiece tokens |
| max positions | {config.max_position_embeddings} |
| activation | `{config.hidden_act}` |
{training}
## Use

```python
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline
fill = pipeline("fill-mask", model=AutoModelForMaskedLM.from_pretrained(PATH),
                tokenizer=AutoTokenizer.from_pretrained(PATH))
fill("오늘 경기 정말 [MASK] 였다")
```

Clean input text as KcBERT did (`kcbert_tf.text.cleaning.clean`) for the best results.
"""


def export_hf(model_dir: str, output: str, *, overwrite: bool = False) -> dict:
    """Write and verify the Hugging Face form of a model directory; returns what was checked."""
    from safetensors.numpy import save_file

    from kcbert_tf.conversion.hf_weights import keras_to_hf
    from kcbert_tf.model.presets import load_model

    output_path = check_output_dir(output, overwrite)
    source = ModelDir.read(model_dir)
    config, vocab = source.config, source.vocab
    model = load_model(source, preprocessor=False)  # float32, whatever the training precision
    architecture = config.architecture
    _LOG.info("export-hf: %s -> %s", model_dir, output)
    with staged_output(output_path) as staging:
        tensors = keras_to_hf(model)
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        with open(staging / "config.json", "w", encoding="utf-8") as handle:
            json.dump(config.to_hf_dict(architecture), handle, indent=2)
        write_tokenizer_dir(vocab, staging, config.max_position_embeddings)
        (staging / "README.md").write_text(model_card(config, model_dir), encoding="utf-8")
        if source.task is not None:  # transformers ignores it; import-hf reads it back
            source.task.write(str(staging))
        ids = verification_ids(vocab, config.max_position_embeddings)
        with TransformersReference(str(staging), ids, config.head) as reference:
            keras_values = keras_outputs(model, ids, config.head)  # while transformers loads
            _check_exported_tokenizer(str(staging), vocab)
            difference = check_agreement(keras_values, reference, config.head)
    summary = {"output": output, "tensors": len(tensors), "max_logit_difference": difference}
    print(
        f"export-hf: wrote {output} ({len(tensors)} tensors, {architecture}); transformers' logits "
        f"agree within {difference:.2e}",
        flush=True,
    )
    return summary


def _check_exported_tokenizer(directory: str, vocab: list[str]) -> None:
    """AutoTokenizer on the exported directory must give the in-graph tokenizer's ids."""
    from transformers import AutoTokenizer

    from kcbert_tf.text.tokenizer import KcBertWordPiece

    texts = ["오늘 경기 정말 최고였다 ㅋㅋㅋ 👍🏻", "[MASK] 자리에 뭐가 들어갈까요?", "漢字 mixed with English 123"]
    expected = KcBertWordPiece(vocab).encode(texts)
    got = AutoTokenizer.from_pretrained(directory)(texts, add_special_tokens=False)["input_ids"]
    if got != expected:
        raise UserError(f"verification failed: AutoTokenizer on {directory} gives other ids than kcbert_tf's tokenizer")


@dataclasses.dataclass
class ConvertedHf:
    """A Hugging Face checkpoint converted in memory: its config and vocab, the Keras model of its
    head with the checkpoint's weights, and which tensors were fresh or unused."""

    config: BertConfig
    vocab: list[str]
    model: object
    report: dict

    @property
    def head_missing(self) -> bool:
        """A head architecture without its head's weights (they were freshly initialized)."""
        return any(name.startswith("cls.") for name in self.report["fresh"])


def read_hf_config(input_dir: str, flag: str = "--input") -> tuple[BertConfig, list[str]]:
    """The config and vocab of a Hugging Face BERT directory, checked (architecture, vocab size);
    errors name the directory as the command's ``flag`` gave it."""
    from kcbert_tf.conversion.hf_weights import SUPPORTED_ARCHITECTURES, ConversionError

    config_path = os.path.join(input_dir, "config.json")
    if not os.path.isdir(input_dir):
        raise UserError(f"{flag} {input_dir}: no such directory (a Hugging Face model directory)")
    try:
        with open(config_path, encoding="utf-8") as handle:
            values = json.load(handle)
        config = BertConfig.from_dict(values, source=config_path)
        architectures = values.get("architectures") or ["BertModel"]
        if not set(architectures) & set(SUPPORTED_ARCHITECTURES):
            raise ConversionError(
                f"{config_path}: architecture {architectures} is not supported; import-hf reads "
                f"{', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        vocab_path = os.path.join(input_dir, "vocab.txt")
        vocab = read_vocab(vocab_path)
        check_vocab_matches(config, vocab, vocab_path, config_path)
    except FileNotFoundError as error:
        raise _missing_file(flag, input_dir, error) from None
    except UserError:
        raise
    except ValueError as error:  # JSON that does not parse: its message says where
        raise UserError(str(error)) from None
    return config, vocab


def _missing_file(flag: str, input_dir: str, error: FileNotFoundError) -> UserError:
    return UserError(f"{flag} {input_dir}: missing {error.filename} (a Hugging Face model directory has config.json, "
                     "vocab.txt and model.safetensors)")


def convert_hf(input_dir: str, config: BertConfig, vocab: list[str], *, allow_pickle: bool = False,
               flag: str = "--input") -> ConvertedHf:
    """The checkpoint of a Hugging Face BERT directory as a Keras model, given its config and
    vocab (:func:`read_hf_config`'s); not yet verified: see :class:`TransformersReference` and
    :func:`check_agreement`."""
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.conversion.hf_weights import assign_hf_tensors, read_hf_tensors

    try:
        tensors = read_hf_tensors(input_dir, allow_pickle)
    except FileNotFoundError as error:
        raise _missing_file(flag, input_dir, error) from None
    except ValueError as error:  # safetensors that do not parse: its message says where
        raise UserError(str(error)) from None
    model = build_model(config)
    report = assign_hf_tensors(model, tensors, input_dir)
    report["tensors"] = len(tensors)
    converted = ConvertedHf(config, vocab, model, report)
    if converted.head_missing:
        _LOG.warning(
            "%s has no MLM head: the decoder is the tied word embeddings and the head's transform "
            "is freshly initialized; fine-tune or pretrain before using fill-mask", input_dir
        )
    if report["unused"]:
        _LOG.warning("not used (no place in a %s): %s", config.architecture, ", ".join(report["unused"]))
    return converted


def import_hf(input_dir: str, output: str, *, allow_pickle: bool = False, overwrite: bool = False) -> dict:
    """Convert and verify a Hugging Face BERT checkpoint into a model directory."""
    config, vocab = read_hf_config(input_dir)
    output_path = check_output_dir(output, overwrite)
    # transformers' side of the verification loads in a child process while the conversion runs.
    ids = verification_ids(vocab, config.max_position_embeddings)
    with TransformersReference(input_dir, ids, config.head) as reference:
        converted = convert_hf(input_dir, config, vocab, allow_pickle=allow_pickle)
        model, report = converted.model, converted.report
        compared = ENCODER if converted.head_missing else config.head
        # How the model is used: the record export-hf carried along, else defaults for a task head.
        task = TaskRecord.read(input_dir, config.head)
        if task is None and config.head != MASKED_LM:
            task = TaskRecord.default(config.head, config.max_position_embeddings, config.labels)
        with staged_output(output_path) as staging:
            difference = check_agreement(keras_outputs(model, ids, compared), reference, compared)
            ModelDir.write(str(staging), config, vocab, model, task=task)
    print(
        f"import-hf: wrote {output} from {input_dir} ({report['tensors']} tensors; "
        f"{'head freshly initialized; ' if converted.head_missing else ''}agree within {difference:.2e})"
        + (f"; task record {task.task or '(the default for its head)'} ({task.head}, max length "
           f"{task.max_seq_length}, {'cleaned' if task.clean else 'texts as given'}): override with predict's flags"
           if task else ""),
        flush=True,
    )
    return {"output": output, "fresh": report["fresh"], "unused": report["unused"], "max_difference": difference}


#: The weight files of a Hugging Face model directory (one of them is there).
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def is_hf_directory(path: str) -> bool:
    """A Hugging Face model directory (``config.json`` and transformers' weight files) rather
    than a model directory of ours (``model.weights.h5``)."""
    if not os.path.isdir(path) or os.path.exists(os.path.join(path, WEIGHTS_FILE)):
        return False
    return os.path.exists(os.path.join(path, "config.json")) and any(
        os.path.exists(os.path.join(path, name)) for name in HF_WEIGHT_FILES
    )


def read_model_or_hf(path: str, scratch: str, allow_pickle: bool = False):
    """The :class:`~kcbert_tf.model.model_dir.ModelDir` of ``path``: a model directory of ours as
    it is, a Hugging Face BERT directory imported on the fly (converted and verified as
    ``import-hf`` does) into ``scratch``, which must outlive the returned value's use."""
    if not is_hf_directory(path):
        return ModelDir.read(path)
    _LOG.info("%s is a Hugging Face directory: importing it (verified as import-hf does)", path)
    imported = os.path.join(scratch, "imported")
    import_hf(path, imported, allow_pickle=allow_pickle)
    return ModelDir.read(imported)


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf export-hf",
        description="Write a model directory in Hugging Face form (safetensors, tokenizer files, model card), "
        "verified against transformers.",
    )
    parser.add_argument("--model-dir", required=True, help="a pretrain / finetune / import-hf model directory")
    parser.add_argument("--output", required=True, help="the Hugging Face directory to write (local)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output once the new one is verified")
    return parser


def build_import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf import-hf",
        description="Convert a Hugging Face BERT checkpoint (BertForMaskedLM, BertForPreTraining, "
        "BertModel, BertForSequenceClassification, BertForTokenClassification, "
        "BertForQuestionAnswering) with its vocab into a model directory, verified against "
        "transformers; a task head gets a task record (task.json) so that predict can use it.",
    )
    parser.add_argument("--input", dest="input_dir", required=True,
                        help="a Hugging Face model directory (config.json, vocab.txt, model.safetensors)")
    parser.add_argument("--output", required=True, help="the model directory to write (local)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="also read pytorch_model.bin (loading a pickle runs code)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --output once the new one is verified")
    return parser


def run_export(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf export-hf``: the flags parsed into one :func:`export_hf` call."""
    return call_with_flags(export_hf, build_export_parser(), argv)


def run_import(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf import-hf``: the flags parsed into one :func:`import_hf` call."""
    return call_with_flags(import_hf, build_import_parser(), argv)
