"""The model and training configs that ship with the package, found by name.

The repository's ``configs/*.json`` install as the package ``kcbert_tf.configs`` (in a wheel and
in the editable install alike), so ``--config kcbert-base --train-config pretrain-base`` works from
any directory.  A path still works, and wins: an existing file or directory is used as given, and
a ``://`` URL (``gs://...``) is passed on untouched for TensorFlow's file system to open.

Example:

>>> packaged_configs()
['kcbert-base', 'kcbert-large', 'kcbert-tiny', 'pretrain-base', 'pretrain-large', 'pretrain-tiny']
>>> import json, pathlib
>>> path = resolve_config("kcbert-tiny", flag="--config")
>>> json.loads(pathlib.Path(path).read_text())["hidden_size"]
64
>>> resolve_config("pretrain-tiny.json", flag="--train-config").endswith("pretrain-tiny.json")
True
>>> resolve_config("gs://bucket/kcbert-base.json", flag="--config")
'gs://bucket/kcbert-base.json'
>>> resolve_config("kcbert-huge", flag="--config")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kcbert_tf.errors.UserError: --config kcbert-huge: no such file, and not a packaged config; give ...
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pathlib
from importlib import resources

from kcbert_tf.errors import UserError

__all__ = ["packaged_configs", "resolve_config"]

_PACKAGE = "kcbert_tf.configs"
_SUFFIX = ".json"
#: Configs copied out of a zip import (a real file is needed), removed when Python exits.
_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def packaged_configs() -> list[str]:
    """The names of the packaged configs (``kcbert-base``, ..., ``pretrain-tiny``), sorted."""
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in resources.files(_PACKAGE).iterdir()
        if entry.name.endswith(_SUFFIX) and entry.is_file()
    )


def resolve_config(name_or_path: str, *, flag: str) -> str:
    """The file to read for ``flag``'s value: the path itself if it exists (or is a ``://`` URL),
    else the packaged config of that name (``kcbert-base`` or ``kcbert-base.json``); a
    :class:`~kcbert_tf.errors.UserError` naming ``flag``, the value and the packaged names
    otherwise."""
    value = os.fspath(name_or_path)
    if "://" in value or os.path.exists(value):
        return value
    names = packaged_configs()
    name = value.removesuffix(_SUFFIX)
    if name in names:  # a bare name: the packaged names hold no directory part
        return _real_path(name + _SUFFIX)
    raise UserError(
        f"{flag} {value}: no such file, and not a packaged config; "
        f"give a path or one of {', '.join(names)}"
    )


def _real_path(filename: str) -> str:
    """A file system path of the packaged ``filename`` (extracted first from a zip import)."""
    entry = resources.files(_PACKAGE) / filename
    if isinstance(entry, pathlib.Path):
        return str(entry)
    return str(_EXTRACTED.enter_context(resources.as_file(entry)))
