"""The one exception type for problems a user can fix.

Everything a user can get wrong — a bad path, config, vocab, record file, option or TPU address —
raises :class:`UserError` (or a subclass that names the domain: ``DataError``, ``ConfigError``,
``VocabError``, ...), with a message that names the file or option and the fix.  The command
layer (:mod:`kcbert_tf.cli`) prints that message as one line and exits with status 2; nothing
below it catches a ``UserError`` only to raise another.

Example:

>>> try:
...     raise UserError("--data x/: no pretraining record file matches; pass ...")
... except ValueError as error:  # a UserError is a ValueError: a bad value from the user
...     print(type(error).__name__, "-", error)
UserError - --data x/: no pretraining record file matches; pass ...
"""

from __future__ import annotations

__all__ = ["UserError", "ConfigError"]


class UserError(ValueError):
    """A problem the user can fix; the message names the file or option and the fix."""


class ConfigError(UserError):
    """A model config that cannot build a KcBERT model; the message names the file and the fix."""
