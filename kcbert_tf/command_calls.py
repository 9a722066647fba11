"""A command is its flags parsed into one call of the Python API: :func:`call_with_flags`.

Each ``kcbert-tf`` subcommand's ``run(argv)`` is ``call_with_flags(function, build_arg_parser(),
argv)``: every flag's destination is a parameter of ``function`` (a flag left at ``None`` leaves
a ``**settings`` parameter out; a parameter whose default is a dataclass instance, such as
:class:`~kcbert_tf.training.strategy.Devices`, takes the flags named by its fields), and the
flags a parser leaves to others (Beam's pipeline options) go to its ``pipeline_args``.  So no
``argparse.Namespace`` goes past the command layer, and a flag no parameter takes is an error
here, at once, rather than a flag silently dropped.

Example:

>>> import argparse, dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Where:
...     host: str = "local"
>>> def greet(name: str, *, times: int = 1, where: Where = Where(), **extra) -> str:
...     return f"{name} x{times} at {where.host} {extra}"
>>> parser = argparse.ArgumentParser()
>>> _ = parser.add_argument("--name"); _ = parser.add_argument("--times", type=int, default=1)
>>> _ = parser.add_argument("--host", default="local"); _ = parser.add_argument("--colour", default=None)
>>> call_with_flags(greet, parser, ["--name", "kc", "--times", "2", "--host", "tpu"])
'kc x2 at tpu {}'
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from typing import Callable, Sequence

__all__ = ["call_with_flags"]


def call_with_flags(function: Callable, parser: argparse.ArgumentParser, argv: Sequence[str] | None, *,
                    pipeline_args: bool = False):
    """Parse ``argv`` with ``parser`` and make the one call of ``function`` its flags name;
    return what it returns.  ``pipeline_args``: the flags the parser does not know go to
    ``function``'s ``pipeline_args`` (Beam's options)."""
    if pipeline_args:
        args, rest = parser.parse_known_args(argv)
    else:
        args, rest = parser.parse_args(argv), None
    given = vars(args)
    parameters = inspect.signature(function).parameters
    takes_settings = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    keywords = {}
    for name, parameter in parameters.items():
        default = parameter.default
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            fields = {field.name for field in dataclasses.fields(default) if field.name in given}
            keywords[name] = dataclasses.replace(default, **{field: given.pop(field) for field in fields})
        elif name in given:
            keywords[name] = given.pop(name)
    if rest is not None:
        keywords["pipeline_args"] = rest
    unused = [name for name, value in given.items() if not (takes_settings and value is None)]
    if unused and not takes_settings:
        raise TypeError(f"{function.__qualname__} takes no parameter for the flag(s) {unused}")
    keywords.update({name: value for name, value in given.items() if value is not None})
    positional = [keywords.pop(name) for name, parameter in parameters.items()
                  if parameter.kind is inspect.Parameter.POSITIONAL_ONLY]
    return function(*positional, **keywords)
