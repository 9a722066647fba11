"""The house: each layer imports only the layers below it, the command layer is imported by
nothing, and only kcbert_tf.model.keras_internals reaches inside KerasHub.

The layers, bottom up: the base modules (errors, output_dir, config_files); ``text`` (cleaning,
tokenizer, vocab, packing, records, model inputs); ``model`` (config, heads, backbone, task
models, the model directory and its task record); ``conversion`` (Hugging Face, SavedModel);
``training`` (strategies, the pretraining core, pretraining, vocab training); ``tasks`` (the
task contract and registry, each task's reader, features, metric, decoding and prediction, the
fine-tuning loop); ``inference`` (predict, fill-mask); then the command layer.  ``beam_jobs``
sits on the text layer.  Read from the source with ``ast`` (imports inside functions count too),
so a new shortcut fails here rather than in review.
"""

from __future__ import annotations

import ast

import pytest

from conftest import REPO

#: The layers, bottom up; each may import the ones before it (and itself), nothing after.
LAYERS = [
    "kcbert_tf.errors",
    "kcbert_tf.output_dir",
    "kcbert_tf.config_files",
    "kcbert_tf.text",
    "kcbert_tf.model",
    "kcbert_tf.conversion",
    "kcbert_tf.training",
    "kcbert_tf.tasks",
    "kcbert_tf.inference",
]

#: package → the kcbert_tf packages and modules it may import (besides its own): the layers below.
ALLOWED = {layer: set(LAYERS[:index]) for index, layer in enumerate(LAYERS)}
#: The Beam jobs run on workers with the base dependencies only: the text layer and below.
ALLOWED["beam_jobs"] = set(LAYERS[: LAYERS.index("kcbert_tf.text") + 1])

#: Imports a Beam job makes only while it is submitted, inside functions its workers never call:
#: batch-predict exports a model directory to a SavedModel before the pipeline starts.
SUBMISSION_ONLY = {"beam_jobs.batch_predict": {"kcbert_tf.conversion.saved_model", "kcbert_tf.model.model_dir"}}


def modules() -> dict[str, ast.Module]:
    found = {}
    for root in ("kcbert_tf", "beam_jobs"):
        for path in sorted((REPO / root).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


#: The command layer: the ``kcbert-tf`` command and the demo it runs.
COMMANDS = ("kcbert_tf.cli", "kcbert_tf.demo")


def test_nothing_imports_the_command_layer():
    offenders = {
        name: sorted(t for t in imported(tree) if t.split(".")[:2] in [c.split(".") for c in COMMANDS])
        for name, tree in modules().items()
        if name not in COMMANDS
    }
    offenders = {name: found for name, found in offenders.items() if found}
    assert not offenders, f"below the command layer, these import it: {offenders}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below(package):
    allowed = ALLOWED[package] | {package}
    wrong = {}
    for name, tree in modules().items():
        if name != package and not name.startswith(package + "."):
            continue
        for target in imported(tree):
            if not target.startswith("kcbert_tf.") and not target.startswith("beam_jobs."):
                continue
            if target.startswith("beam_jobs.") and package == "beam_jobs":
                continue
            if target in SUBMISSION_ONLY.get(name, ()) or any(
                target.startswith(ok + ".") for ok in SUBMISSION_ONLY.get(name, ())
            ):
                continue
            if not any(target == ok or target.startswith(ok + ".") for ok in allowed):
                wrong.setdefault(name, set()).add(target)
    assert not wrong, f"{package} reaches above its layer: {wrong}"


@pytest.mark.parametrize("name", sorted(SUBMISSION_ONLY))
def test_submission_only_imports_are_inside_functions(name):
    """What a job imports only to be submitted stays out of its module's top level, so a worker
    that unpickles its DoFns never imports it (the layers above the text layer need Keras)."""
    tree = modules()[name]
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module)
        elif isinstance(node, ast.Import):
            top_level.update(alias.name for alias in node.names)
    assert not top_level & SUBMISSION_ONLY[name]
    assert SUBMISSION_ONLY[name] <= imported(tree)  # still used: else drop it from the list


def test_only_keras_internals_reaches_inside_keras_hub():
    offenders = {
        name: sorted(t for t in imported(tree) if t.startswith("keras_hub.src") or t.startswith("keras.src"))
        for name, tree in modules().items()
        if name != "kcbert_tf.model.keras_internals"
    }
    assert not {name: found for name, found in offenders.items() if found}
    # Private sublayers of KerasHub's BERT are named in keras_internals alone.
    private = ("_self_attention_layer", "_query_dense", "_feedforward_", "_intermediate_dense", "_dropout_layer")
    sources = {
        path: path.read_text(encoding="utf-8")
        for root in ("kcbert_tf", "beam_jobs")
        for path in (REPO / root).rglob("*.py")
        if path.name != "keras_internals.py"
    }
    assert not [str(path) for path, text in sources.items() if any(f".{name}" in text for name in private)]
