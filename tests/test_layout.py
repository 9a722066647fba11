"""The house: each layer imports only the layers below it, the command layer is imported by
nothing, only kcbert_tf.model.keras_internals reaches inside KerasHub, no module imports itself
through others (no circle), no project module is named by an import string, and an import
inside a function is one that keeps start-up light (TensorFlow, Keras, torch, Beam and what needs
them).

The layers, bottom up: the base modules (errors, output_dir, file_reading, config_files,
command_calls); ``text`` (cleaning,
tokenizer, vocab, packing, records, model inputs); ``model`` (config, heads, backbone, task
models, the model directory and its task record); ``conversion`` (Hugging Face, SavedModel);
``training`` (strategies, the pretraining core, pretraining, vocab training); ``tasks`` (the
task contract and registry, each task's reader, features, metric, decoding and prediction, the
fine-tuning loop); ``litert`` (LiteRT export and serving); ``inference`` (predict, fill-mask);
then the command layer.  ``beam_jobs`` sits on the text layer (and the LiteRT serving modules).  Read from the source with ``ast`` (imports inside functions count too),
so a new shortcut fails here rather than in review.
"""

from __future__ import annotations

import ast
import re

import pytest

from conftest import REPO

#: The layers, bottom up; each may import the ones before it (and itself), nothing after.
LAYERS = [
    "kcbert_tf.errors",
    "kcbert_tf.output_dir",
    "kcbert_tf.file_reading",
    "kcbert_tf.config_files",
    "kcbert_tf.command_calls",
    "kcbert_tf.text",
    "kcbert_tf.model",
    "kcbert_tf.conversion",
    "kcbert_tf.training",
    "kcbert_tf.tasks",
    "kcbert_tf.litert",
    "kcbert_tf.inference",
]

#: package → the kcbert_tf packages and modules it may import (besides its own): the layers below.
ALLOWED = {layer: set(LAYERS[:index]) for index, layer in enumerate(LAYERS)}
#: The Beam jobs run on workers with the base dependencies only: the text layer and below.
ALLOWED["beam_jobs"] = set(LAYERS[: LAYERS.index("kcbert_tf.text") + 1])
#: ... and, for LiteRT models, the serving modules, which need no TensorFlow (tests/test_litert.py):
#: workers with ``kcbert-tf[litert]``.
ALLOWED["beam_jobs"] |= {"kcbert_tf.litert.litert_dir", "kcbert_tf.litert.predict", "kcbert_tf.tasks.sentence.prediction"}

#: Imports a Beam job makes only while it is submitted, inside functions its workers never call:
#: batch-predict exports a model directory to a SavedModel (or reads a LiteRT directory's record)
#: before the pipeline starts; and those only a worker serving a LiteRT model makes (one serving a
#: SavedModel loads none of the model layers, tests/test_batch_predict.py).
SUBMISSION_ONLY = {
    "beam_jobs.batch_predict": {"kcbert_tf.conversion.saved_model", "kcbert_tf.model.model_dir",
                                "kcbert_tf.litert.litert_dir"},
    "beam_jobs.litert_handler": {"kcbert_tf.litert.litert_dir", "kcbert_tf.litert.predict",
                                 "kcbert_tf.tasks.sentence.prediction"},
}


def module_names() -> set[str]:
    return set(modules())


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


# --- Circles, import strings, imports inside functions ---------------------------------------------

#: Third-party packages whose import costs start-up (seconds, hundreds of MB): imported inside a
#: function where only some paths need them.
HEAVY_PACKAGES = {"tensorflow", "tensorflow_text", "keras", "keras_hub", "torch", "transformers", "tokenizers",
                  "safetensors", "apache_beam", "ai_edge_litert", "sklearn", "scipy", "seqeval", "soynlp", "h5py", "tensorboard",
                  "google"}
#: The modules that import the rest on demand by design: the package's lazy Python API and the
#: command layer's dispatch.
DISPATCH = {"kcbert_tf", "kcbert_tf.cli", "kcbert_tf.demo"}
#: Strings that look like module names and are not: the tasks' entry-point group, and the data
#: package of the packaged configs (read with importlib.resources).
NOT_MODULE_NAMES = {"kcbert_tf.tasks", "kcbert_tf.configs"}


def _targets(node, names: set[str]) -> set[str]:
    """The modules an import statement imports (a ``from X import Y`` of a submodule: ``X.Y``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    found = set()
    for alias in node.names:
        full = f"{node.module}.{alias.name}"
        found.add(full if full in names else node.module)
    return found


def _imports(tree: ast.Module, names: set[str]) -> tuple[set[str], set[str]]:
    """(top-level imports, imports inside functions) of a module."""
    top, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inside in ast.walk(node):
                if isinstance(inside, ast.Import) or (isinstance(inside, ast.ImportFrom) and inside.module):
                    inner |= _targets(inside, names)
    for node in tree.body:
        for inside in ast.walk(node):
            if isinstance(inside, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                break
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module):
            top |= _targets(node, names)
        elif isinstance(node, (ast.If, ast.Try)):  # imports guarded at the top level
            for inside in ast.walk(node):
                if isinstance(inside, ast.Import) or (isinstance(inside, ast.ImportFrom) and inside.module):
                    top |= _targets(inside, names)
    return top, inner


def _graph() -> dict[str, tuple[set[str], set[str]]]:
    trees = modules()
    names = set(trees)
    return {name: _imports(tree, names) for name, tree in trees.items()}


def heavy_modules() -> set[str]:
    """The project modules whose import (their top-level imports, followed through the project)
    reaches a heavy package."""
    graph = _graph()
    heavy = set()
    changed = True
    while changed:
        changed = False
        for name, (top, _) in graph.items():
            if name in heavy:
                continue
            if any(t.split(".")[0] in HEAVY_PACKAGES or t in heavy for t in top):
                heavy.add(name)
                changed = True
    return heavy


def test_no_module_imports_itself_through_others():
    """No circle in the import graph, imports inside functions included."""
    graph = {name: {t for t in top | inner if t in modules_set} for name, (top, inner) in _graph().items()
             for modules_set in [set(_graph())]}
    index, low, on_stack, stack, circles = {}, {}, set(), [], []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                circles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert not circles, f"import circles: {circles}"


def test_no_project_module_is_named_by_an_import_string():
    """Tasks reach the registry through the kcbert_tf.tasks entry points, and everything else
    through import statements a reader (and this test) can follow."""
    pattern = re.compile(r"^(kcbert_tf|beam_jobs)(\.[A-Za-z_]\w*)+(:\w+)?$")
    found = {}
    for name, tree in modules().items():
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if pattern.match(node.value.strip()) and node.value.strip() not in NOT_MODULE_NAMES | {name}:
                    found.setdefault(name, []).append(node.value)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
                if node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith(
                        ("kcbert_tf", "beam_jobs")):
                    found.setdefault(name, []).append(node.args[0].value)
    assert not found, found


def test_imports_inside_functions_are_the_heavy_ones():
    """A module imports inside a function only what would slow every start-up (TensorFlow,
    Keras, torch, Beam, scikit-learn, ... and the project modules that import them); the rest is
    imported at the top, where a reader sees it."""
    graph, heavy = _graph(), heavy_modules()
    light = {}
    for name, (_, inner) in graph.items():
        if name in DISPATCH:
            continue
        wrong = sorted(t for t in inner if t.split(".")[0] not in HEAVY_PACKAGES and t not in heavy
                       and t not in SUBMISSION_ONLY.get(name, ()))
        if wrong:
            light[name] = wrong
    assert not light, f"light imports inside functions (move them to the top): {light}"
