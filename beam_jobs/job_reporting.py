"""Counting in the Beam jobs: stats dicts that are also Beam counters, summed and shown at the end.

A ``DoFn`` reports what it did as a dict of counts with :func:`report_counts`: the counts go to
the Beam counters of the job's namespace (the runner's UI shows them while the job runs) and on to
a ``stats`` output, which the job sums with :func:`sum_stats` into its ``stats.json``.  At the
end, :func:`read_counters` reads the counters back and :func:`format_counters` lays them out.

Example:

>>> print(format_counters("demo", ["kept", "dropped"], {"kept": 1200}))
Beam counters (demo):
  kept           1,200
  dropped            0
"""

from __future__ import annotations

import collections
import json
from typing import Iterable, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_jobs.job_files import read_json
from kcbert_tf.output_dir import write_text_atomically

__all__ = [
    "report_counts",
    "sum_stats",
    "TotalStats",
    "WriteStatsFile",
    "run_job",
    "read_counters",
    "format_counters",
]


def report_counts(namespace: str, counts: dict[str, int]) -> beam.pvalue.TaggedOutput:
    """Add ``counts`` to the Beam counters of ``namespace``; return them as a ``stats`` output."""
    for name, value in counts.items():
        if value:
            Metrics.counter(namespace, name).inc(value)
    return beam.pvalue.TaggedOutput("stats", dict(counts))


def sum_stats(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Add up partial stats (associative, so Beam may apply it to its own results)."""
    total = collections.Counter()
    for part in parts:
        total.update(part)
    return dict(total)


@beam.ptransform_fn
def TotalStats(parts, keys: Sequence[str]):  # noqa: N802 - a PTransform, named like one
    """The steps' ``stats`` outputs (a tuple of PCollections) → one dict with every key of
    ``keys`` (0 where no step counted it)."""
    return (
        parts
        | "FlattenStats" >> beam.Flatten()
        | "SumStats" >> beam.CombineGlobally(sum_stats)
        | "AllKeys" >> beam.Map(lambda counts: {key: counts.get(key, 0) for key in keys})
    )


class WriteStatsFile(beam.DoFn):
    """Write a job's ``stats.json`` atomically: ``make_stats(counts, *side_inputs)`` gives the
    dict (a picklable function: the job's module-level one, with ``functools.partial``)."""

    def __init__(self, path: str, make_stats):
        super().__init__()
        self._path = path
        self._make_stats = make_stats

    def process(self, counts: dict, *side_inputs):

        stats = self._make_stats(counts, *side_inputs)
        yield write_text_atomically(self._path, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")


def run_job(options, build, stats_path: str, namespace: str, on_result=None) -> tuple[dict, dict[str, int]]:
    """Build a pipeline with ``build(pipeline)``, run it to the end; return the ``stats.json``
    it wrote and its Beam counters of ``namespace``.  ``on_result(result)``, if given, sees the
    finished pipeline's result (its other metrics)."""

    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    if on_result is not None:
        on_result(result)
    return read_json(stats_path), read_counters(result, namespace)


def read_counters(result, namespace: str) -> dict[str, int]:
    """The Beam counters of ``namespace`` in a finished pipeline ``result`` (empty when the runner
    cannot report metrics; the stats still say it all)."""
    counters: dict[str, int] = {}
    try:
        query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace))
    except Exception:  # Some runners cannot report metrics.
        return counters
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + (value or 0)
    return counters


def format_counters(namespace: str, names: Sequence[str], counters: dict[str, int]) -> str:
    """The console block of counters: a title line, then one aligned line per name."""
    width = max(map(len, names))
    lines = [f"Beam counters ({namespace}):"]
    lines += [f"  {name:<{width}} {counters.get(name, 0):>12,}" for name in names]
    return "\n".join(lines)

