"""Pipeline options shared by the Beam jobs: pass-through flags, local runs on every core.

Any flag a job does not know is a Beam pipeline option (``--runner DataflowRunner --project …``).
Without ``--runner``, a job runs locally on Beam's portable FnApiRunner (the engine behind the
DirectRunner).  Naming it directly skips the DirectRunner's attempt to download the Prism runner
binary, which needs the network and would be refused or hang on an offline machine.  Small inputs
run in this process; from :data:`MULTI_PROCESS_MIN_BYTES` of input on, one worker process per core
(starting them costs about two seconds, which only a larger input wins back).
``--direct_num_workers`` and ``--direct_running_mode`` override that choice.

Example:

>>> job_pipeline_options([], input_bytes=1 << 30).get_all_options()["direct_running_mode"]
'multi_processing'
"""

from __future__ import annotations

from typing import Sequence

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["LOCAL_RUNNER", "MULTI_PROCESS_MIN_BYTES", "job_pipeline_options"]

#: The runner used when none is named: the in-process portable runner, no network needed.
LOCAL_RUNNER = "apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner"

#: From this much input on, a local run uses a worker process per core (measured crossover on a
#: 2-core machine: between 25 MB and 125 MB of comments; see benchmarks/preprocess.py).
MULTI_PROCESS_MIN_BYTES = 64 << 20


def job_pipeline_options(beam_args: Sequence[str], input_bytes: int = 0, *,
                         multi_process_min_bytes: int = MULTI_PROCESS_MIN_BYTES) -> PipelineOptions:
    """Beam options from a job's leftover arguments, with the local defaults filled in (a worker
    process per core from ``multi_process_min_bytes`` of input on)."""
    args = list(beam_args)
    given = {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}
    if "--runner" not in given:
        args.append(f"--runner={LOCAL_RUNNER}")
        if not given & {"--direct_num_workers", "--direct_running_mode"}:
            if input_bytes >= multi_process_min_bytes:  # 0 workers: one per core.
                args += ["--direct_num_workers=0", "--direct_running_mode=multi_processing"]
            else:
                args += ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
    return PipelineOptions(args)
