"""Choose and build the ``tf.distribute`` strategy that pretraining and fine-tuning run under.

:func:`resolve_strategy` picks, in this order: a Cloud TPU when one is named (``TPUStrategy``),
``MirroredStrategy`` over two or more GPUs, and otherwise the default strategy (one GPU or the
CPU).  Build the model and call ``model.compile`` inside ``info.strategy.scope()``; ``model.fit``
then splits every global batch over ``info.num_replicas`` replicas
(:func:`per_replica_batch_size` checks that it divides).  :func:`mixed_precision_policy` picks
the Keras mixed-precision policy that fits the hardware.

Running on a Cloud TPU:

- On a **Cloud TPU VM** (the TPU is attached to the machine you are logged in to) pass
  ``--tpu local``: TensorFlow talks to the chips directly, nothing goes over the network.
- From a VM that reaches a **TPU node** over the network, pass its name, ``--tpu my-tpu-name``.
  TensorFlow asks the Cloud TPU API for the node's address, which needs the ``cloud-tpu-client``
  package; the zone and project come from the GCE metadata server when this VM runs in the same
  zone and project, else pass them (``zone=`` / ``project=``; on the command line for example
  ``--tpu-zone "$(gcloud config get-value compute/zone)"
  --tpu-project "$(gcloud config get-value project)"``).
- Or give the node's gRPC address directly, ``--tpu grpc://10.240.1.2:8470``.

Connecting to a TPU that does not answer can block inside TensorFlow's C++ code for many minutes,
deaf to Ctrl-C.  So a ``grpc://`` address is first probed with a plain TCP connect (a refused or
unreachable port fails at once), and the whole connect + initialize runs in a daemon thread that
is given up after ``connect_timeout_s`` seconds, raising :class:`TpuUnreachable`.  The abandoned
thread may then keep the process from exiting: a command line prints the error and calls
:func:`exit_hard_on_hang`, which ends the process with ``os._exit`` when (and only when) such a
thread is still stuck.

Example:

>>> info = resolve_strategy()  # no TPU named: the GPUs, else the CPU
>>> info.kind in {"multi-gpu", "gpu", "cpu"} and info.num_replicas >= 1
True
>>> per_replica_batch_size(256, 8)  # a v3-8 TPU: 8 replicas
32
>>> [mixed_precision_policy(kind) for kind in ("tpu", "cpu")], mixed_precision_policy("tpu", "off")
(['mixed_bfloat16', None], None)
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import urllib.request
from typing import Any, Sequence

from kcbert_tf.errors import UserError

__all__ = [
    "Devices",
    "strategy_info",
    "KINDS",
    "PRECISIONS",
    "DEFAULT_TPU_PORT",
    "StrategyInfo",
    "TpuUnreachable",
    "resolve_strategy",
    "connect_thread_alive",
    "exit_hard_on_hang",
    "mixed_precision_policy",
    "per_replica_batch_size",
    "is_chief",
    "split_cpu",
    "tpu_vm_hosts",
    "FitSettings",
    "fit_settings",
]

#: The values of :attr:`StrategyInfo.kind`; "multi-cpu" is ``--cpu-replicas N`` (N >= 2).
KINDS = ("tpu", "multi-gpu", "gpu", "multi-cpu", "cpu")

#: The values ``mixed_precision_policy(requested=...)`` accepts.
PRECISIONS = ("auto", "bf16", "fp16", "off")

#: The port a ``grpc://host`` TPU address without one means (TensorFlow's own default).
DEFAULT_TPU_PORT = 8470

#: The longest the TCP probe of a ``grpc://`` address waits for an answer.
_PROBE_TIMEOUT_S = 10.0

_TPU_CHECKS = (
    "check the TPU name, zone and project (`gcloud compute tpus list --zone ZONE`) and that the "
    "TPU is READY; that a firewall lets this machine reach the TPU's port (8470); and, on a Cloud "
    "TPU VM (the TPU attached to this machine), use `--tpu local` instead of a name or address"
)

# The connect threads given up on; they may still be stuck inside TensorFlow's C++ code.
_abandoned_threads: list[threading.Thread] = []


@dataclasses.dataclass(frozen=True)
class StrategyInfo:
    """The strategy to build and train under, what kind of hardware it spans, and for the logs."""

    strategy: Any  # a tf.distribute.Strategy (TensorFlow is imported only when needed)
    kind: str  # one of KINDS: "tpu", "multi-gpu", "gpu", "cpu"
    num_replicas: int  # strategy.num_replicas_in_sync: how many ways a global batch is split
    device_description: str  # e.g. "TPU 'local' (8 cores)", "1 GPU: NVIDIA H200 (compute ..."
    is_chief: bool = True  # the one process that writes config, checkpoints, logs and weights


class TpuUnreachable(UserError, RuntimeError):
    """The TPU could not be reached or initialized: refused, silent past the timeout, or failed.

    ``address`` is the ``--tpu`` value; ``connect_thread_alive`` is true when the connect thread
    was given up on while still running, so the process should end with :func:`exit_hard_on_hang`.
    """

    def __init__(self, message: str, *, address: str, connect_thread_alive: bool = False):
        super().__init__(message)
        self.address = address
        self.connect_thread_alive = connect_thread_alive


def resolve_strategy(
    tpu: str | None = None,
    *,
    zone: str | None = None,
    project: str | None = None,
    connect_timeout_s: float = 300,
    cpu_replicas: int | None = None,
) -> StrategyInfo:
    """The strategy for this machine: TPU when ``tpu`` is given, else the GPUs, else the CPU.

    ``cpu_replicas=N`` (N >= 2) splits the host CPU into N logical devices and trains under
    ``MirroredStrategy`` over them (kind ``"multi-cpu"``): multi-replica training, checkable on
    any machine.  It must come before TensorFlow has set up its devices, or the process must
    already have N logical CPUs; ``cpu_replicas=1`` is the plain CPU.

    ``tpu`` is ``"local"`` on a Cloud TPU VM, a TPU node's name (``zone`` and ``project`` default
    to this VM's, read from the GCE metadata server), or a ``grpc://host:port`` address.  The
    connect and initialization must finish within ``connect_timeout_s`` seconds (it takes well
    under a minute on a healthy TPU; the default leaves room for one that is still starting),
    after a TCP probe of a ``grpc://`` address that gives up within 10 s.

    Without ``tpu``: two or more GPUs → ``MirroredStrategy`` (kind ``"multi-gpu"``); one GPU →
    the default strategy (kind ``"gpu"``): Keras already places everything on that GPU, and the
    default strategy keeps ``model.fit``, datasets and checkpoints exactly as without
    distribution, where ``OneDeviceStrategy`` would only add a distributed-dataset wrapper for no
    gain; no GPU → the default strategy on the CPU (kind ``"cpu"``).

    Raises :class:`TpuUnreachable` when the TPU cannot be reached or initialized, and
    :class:`~kcbert_tf.errors.UserError` for a malformed ``tpu`` or timeout.
    """
    if cpu_replicas is not None:
        if tpu is not None:
            raise UserError("--cpu-replicas and --tpu exclude each other: pick one")
        return _cpu_replicas_strategy(cpu_replicas)
    if tpu is not None:
        return _tpu_strategy(tpu, zone=zone, project=project, connect_timeout_s=connect_timeout_s)
    if zone is not None or project is not None:
        raise UserError("a TPU zone or project was given without a TPU: pass --tpu as well")

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= 2:
        return _mirrored_strategy(None, f"{len(gpus)} GPUs: {_describe_gpus(gpus)}")
    strategy = tf.distribute.get_strategy()
    if gpus:
        return StrategyInfo(strategy, "gpu", 1, f"1 GPU: {_describe_gpus(gpus)}")
    return StrategyInfo(strategy, "cpu", 1, "CPU (no GPU found, no TPU named)")


@dataclasses.dataclass(frozen=True)
class Devices:
    """Where to train, as the command line names it (``--tpu``, ``--tpu-zone``, ``--tpu-project``,
    ``--tpu-timeout``, ``--cpu-replicas``): :meth:`resolve` gives the strategy."""

    tpu: str | None = None
    tpu_zone: str | None = None
    tpu_project: str | None = None
    tpu_timeout: float = 300
    cpu_replicas: int | None = None

    def split_cpu(self) -> None:
        """Split the CPU into ``cpu_replicas`` logical devices now, before any TensorFlow op."""
        if self.cpu_replicas is not None:
            split_cpu(self.cpu_replicas)

    def resolve(self, strategy: Any = None) -> StrategyInfo:
        """The :class:`StrategyInfo` of ``strategy`` (one a caller made), else of these devices
        (:func:`resolve_strategy`)."""
        if strategy is not None:
            return strategy_info(strategy)
        return resolve_strategy(self.tpu, zone=self.tpu_zone, project=self.tpu_project,
                                connect_timeout_s=self.tpu_timeout, cpu_replicas=self.cpu_replicas)

    @staticmethod
    def add_flags(parser) -> None:
        """The flags of these fields, for a command's parser."""
        parser.add_argument("--tpu", default=None, help="'local' on a single-host Cloud TPU VM, a TPU name (pod "
                            "slices, TPU nodes), or grpc://host:port")
        parser.add_argument("--tpu-zone", default=None, help="zone of a TPU node")
        parser.add_argument("--tpu-project", default=None, help="GCP project of a TPU node")
        parser.add_argument("--tpu-timeout", type=float, default=300, help="seconds to reach the TPU before giving up")
        parser.add_argument("--cpu-replicas", type=int, default=None,
                            help="split the CPU into N logical devices and train on N replicas (MirroredStrategy)")


def strategy_info(strategy: Any) -> StrategyInfo:
    """The :class:`StrategyInfo` of a strategy a caller made (a notebook's ``TPUStrategy``, a
    ``MirroredStrategy``, the default one)."""
    import tensorflow as tf

    name = type(strategy).__name__
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.TPUStrategy):
        kind = "tpu"
    elif replicas > 1:
        devices = getattr(strategy.extended, "worker_devices", ())
        kind = "multi-gpu" if any("GPU" in device.upper() for device in devices) else "multi-cpu"
    else:
        kind = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return StrategyInfo(strategy, kind, replicas, f"{name} ({replicas} replica(s))", is_chief(strategy))


def connect_thread_alive() -> bool:
    """Whether a TPU connect thread that :func:`resolve_strategy` gave up on is still running."""
    return any(thread.is_alive() for thread in _abandoned_threads)


def exit_hard_on_hang(code: int = 2) -> None:
    """End the process now with ``code`` if a given-up TPU connect thread is still stuck.

    A thread blocked inside TensorFlow's C++ connect can keep the interpreter from exiting, so a
    command line that caught :class:`TpuUnreachable` prints its message, then calls this: it
    flushes stdout and stderr and calls ``os._exit(code)`` (no cleanup handlers run; nothing is
    being written at that point).  When no such thread is alive it returns, and the caller exits
    normally.
    """
    if connect_thread_alive():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def mixed_precision_policy(kind: str, requested: str = "auto") -> str | None:
    """The Keras mixed-precision policy name for ``kind`` of hardware, or None for float32.

    ``"auto"``: ``"mixed_bfloat16"`` on TPU; on GPUs ``"mixed_bfloat16"`` when every GPU has
    compute capability 8.0 or more (Ampere and later), else ``"mixed_float16"``; None on the CPU.
    ``"bf16"``, ``"fp16"`` and ``"off"`` force ``"mixed_bfloat16"``, ``"mixed_float16"`` and None
    (float16 is refused on TPU, which computes in bfloat16).  Apply the result before building the
    model: ``keras.mixed_precision.set_global_policy(policy or "float32")``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown device kind {kind!r}: expected one of {', '.join(KINDS)}")
    choice = requested.strip().lower() if isinstance(requested, str) else requested
    if choice not in PRECISIONS:
        raise UserError(
            f"unknown precision {requested!r}: use one of {', '.join(PRECISIONS)} "
            "(auto picks bf16 on TPU and on GPUs of compute capability >= 8.0, fp16 on older "
            "GPUs, float32 on CPU)"
        )
    if choice == "off":
        return None
    if choice == "bf16":
        return "mixed_bfloat16"
    if choice == "fp16":
        if kind == "tpu":
            raise UserError("precision fp16 is not supported on TPU: use bf16 (or auto) there")
        return "mixed_float16"
    if kind == "tpu":
        return "mixed_bfloat16"
    if kind in ("cpu", "multi-cpu"):
        return None
    capabilities = _gpu_compute_capabilities()
    if capabilities and all(capability >= (8, 0) for capability in capabilities):
        return "mixed_bfloat16"
    return "mixed_float16"


def per_replica_batch_size(global_batch: int, num_replicas: int, *, kind: str | None = None,
                           grad_accum_steps: int = 1) -> int:
    """``global_batch`` split over ``num_replicas``; a clear error when it does not divide (or,
    with ``grad_accum_steps`` K, when a replica's batch does not split into K micro-batches).

    ``kind`` (a :attr:`StrategyInfo.kind`) only names the hardware in the message.
    """
    if num_replicas < 1:
        raise ValueError(f"the number of replicas must be at least 1, got {num_replicas}")
    if global_batch < 1:
        raise UserError(f"--batch-size must be at least 1, got {global_batch}")
    if grad_accum_steps < 1:
        raise UserError(f"--grad-accum-steps must be at least 1, got {grad_accum_steps}")
    parts = num_replicas * grad_accum_steps
    if global_batch % parts:
        where = {
            "tpu": "this TPU",
            "multi-gpu": "these GPUs",
            "gpu": "this GPU",
            "multi-cpu": "these logical CPUs",
            "cpu": "this CPU",
        }.get(kind or "", "this machine")
        below = global_batch // parts * parts
        above = below + parts
        examples = f"{below} or {above}" if below else f"{above}"
        split = f"the {num_replicas} replicas of {where}"
        if grad_accum_steps > 1:
            split += f" times --grad-accum-steps {grad_accum_steps}"
        raise UserError(
            f"--batch-size {global_batch} is not divisible by {split}; use a multiple of {parts} such as {examples}"
        )
    return global_batch // num_replicas


# --- TPU ----------------------------------------------------------------------------------------


def _tpu_strategy(
    tpu: str, *, zone: str | None, project: str | None, connect_timeout_s: float
) -> StrategyInfo:
    """Connect to and initialize the TPU in a bounded daemon thread, then wrap it in a strategy."""
    if not isinstance(tpu, str) or not tpu.strip():
        raise UserError(
            "--tpu is empty: pass `local` on a Cloud TPU VM, the TPU node's name, or its "
            "grpc://host:port address"
        )
    if not connect_timeout_s > 0:
        raise UserError(
            f"--tpu-timeout must be a positive number of seconds, got {connect_timeout_s}"
        )
    tpu = tpu.strip()
    if tpu == "local":
        hosts = tpu_vm_hosts()
        if hosts > 1:
            raise TpuUnreachable(
                f"`--tpu local` on a multi-host TPU slice ({hosts} hosts): TPUStrategy is "
                "single-client, so one process drives every host of the slice. Run the command "
                "once, on one host (or on any VM in the zone), with the slice's name: "
                "`--tpu TPU_NAME` (see `gcloud compute tpus tpu-vm list --zone ZONE`), not on "
                "each host with `--tpu local`",
                address=tpu,
            )
    if tpu.startswith("grpc://"):
        for host, port in _grpc_endpoints(tpu):
            _probe_tcp(tpu, host, port, min(_PROBE_TIMEOUT_S, connect_timeout_s))
    import tensorflow as tf  # here, not in the thread: an import is slow but never hangs

    stage = ["starting"]
    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            stage[0] = "creating the TPUClusterResolver"
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=tpu, zone=zone, project=project
            )
            if tpu != "local":
                # On a TPU VM there is no remote cluster: TensorFlow's own
                # experimental_connect_to_cluster returns at once for a "local" resolver.
                stage[0] = "connecting to the TPU (tf.config.experimental_connect_to_cluster)"
                tf.config.experimental_connect_to_cluster(resolver)
            stage[0] = "initializing the TPU system (tf.tpu.experimental.initialize_tpu_system)"
            tf.tpu.experimental.initialize_tpu_system(resolver)
            stage[0] = "building the TPUStrategy"
            outcome["strategy"] = tf.distribute.TPUStrategy(resolver)
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = error

    thread = threading.Thread(target=connect, name=f"kcbert-tf TPU connect {tpu}", daemon=True)
    thread.start()
    try:
        thread.join(connect_timeout_s)
    finally:  # also when Ctrl-C interrupts the wait
        if thread.is_alive():
            _abandoned_threads.append(thread)
    if thread.is_alive():
        raise TpuUnreachable(
            f"timed out after {connect_timeout_s:g} s connecting to the TPU {tpu!r}: still "
            f"{stage[0]}. Nothing answered as a TPU; {_TPU_CHECKS}. A TPU that is still starting "
            "may need a longer --tpu-timeout.",
            address=tpu,
            connect_thread_alive=True,
        )
    if "error" in outcome:
        error = outcome["error"]
        raise _explain_tpu_error(tpu, stage[0], error, zone, project) from error

    strategy = outcome["strategy"]
    replicas = int(strategy.num_replicas_in_sync)
    hosts = int(getattr(getattr(strategy.extended, "_tpu_metadata", None), "num_hosts", 1) or 1)
    return StrategyInfo(
        strategy,
        "tpu",
        replicas,
        f"TPU {tpu!r} ({replicas} cores, {hosts} host{'s' if hosts > 1 else ''})",
        is_chief(strategy),
    )


def _grpc_endpoints(address: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ``grpc://host:port[,grpc://host:port...]`` TPU address."""
    endpoints = []
    for part in address.split(","):
        endpoint = part.strip().removeprefix("grpc://")
        host, colon, port_text = endpoint.rpartition(":")
        if not colon:
            host, port_text = endpoint, str(DEFAULT_TPU_PORT)
        host = host.strip("[]")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UserError(
                f"bad TPU address {address!r}: expected grpc://HOST:PORT, "
                f"e.g. grpc://10.240.1.2:{DEFAULT_TPU_PORT}"
            )
        endpoints.append((host, int(port_text)))
    return endpoints


def _probe_tcp(address: str, host: str, port: int, timeout_s: float) -> None:
    """Raise :class:`TpuUnreachable` unless ``host:port`` accepts a TCP connection in time.

    Name resolution is not covered by a socket timeout, so the probe runs in a daemon thread too.
    """
    result: dict[str, BaseException | None] = {}

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result["error"] = None
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            result["error"] = error

    thread = threading.Thread(target=probe, name=f"kcbert-tf TPU probe {host}:{port}", daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    if "error" not in result:
        problem = f"no answer within {timeout_s:g} s"
    elif result["error"] is None:
        return
    elif isinstance(result["error"], ConnectionRefusedError):
        problem = "connection refused (nothing listens on that port)"
    elif isinstance(result["error"], socket.gaierror):
        problem = f"the host name {host!r} does not resolve ({result['error']})"
    elif isinstance(result["error"], (socket.timeout, TimeoutError)):
        problem = f"no answer within {timeout_s:g} s"
    else:
        problem = str(result["error"]) or type(result["error"]).__name__
    raise TpuUnreachable(
        f"cannot reach the TPU at {address}: TCP connect to {host}:{port} failed: {problem}. "
        f"{_TPU_CHECKS[0].upper()}{_TPU_CHECKS[1:]}.",
        address=address,
    )


def _explain_tpu_error(
    tpu: str, stage: str, error: BaseException, zone: str | None, project: str | None
) -> TpuUnreachable:
    """A :class:`TpuUnreachable` saying what failed while ``stage`` and what to do about it."""
    detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if len(detail) > 200:  # TensorFlow's messages run on: keep the first sentence
        sentence_end = detail.find(". ", 0, 200)
        detail = detail[: sentence_end + 1] if sentence_end > 0 else detail[:200] + "…"
    if tpu == "local":
        hint = (
            "`--tpu local` is for a Cloud TPU VM, the TPU attached to this machine, with a "
            "TPU-enabled TensorFlow (libtpu) installed; from another machine pass the TPU node's "
            "name or grpc:// address, or leave --tpu out to train on the GPUs or CPU"
        )
    elif "cloud-tpu-client" in str(error) or "Google API client" in str(error):
        hint = (
            "resolving a TPU name needs the Cloud TPU API client: `pip install cloud-tpu-client`, "
            "or pass the TPU's grpc://host:8470 address instead of its name"
        )
    elif not tpu.startswith("grpc://") and (zone is None or project is None):
        hint = (
            "the TPU's zone and project were not given, so TensorFlow asks this VM's GCE metadata "
            "server for them: off Google Cloud, or for a TPU in another zone or project, pass them "
            "(e.g. --tpu-zone \"$(gcloud config get-value compute/zone)\" --tpu-project "
            f"\"$(gcloud config get-value project)\"); also {_TPU_CHECKS}"
        )
    else:
        hint = _TPU_CHECKS
    return TpuUnreachable(
        f"could not set up the TPU {tpu!r} while {stage}: {type(error).__name__}: "
        f"{detail.rstrip('.')}. "
        f"{hint[0].upper()}{hint[1:]}.",
        address=tpu,
    )


# --- GPU / CPU ----------------------------------------------------------------------------------


def _mirrored_strategy(devices: Sequence[str] | None, description: str) -> StrategyInfo:
    """``MirroredStrategy`` over ``devices`` (None: every visible GPU) as a "multi-gpu" info."""
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(list(devices) if devices is not None else None)
    return StrategyInfo(strategy, "multi-gpu", int(strategy.num_replicas_in_sync), description)


def _gpu_details() -> list[dict]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return [tf.config.experimental.get_device_details(gpu) for gpu in gpus]


def _gpu_compute_capabilities() -> list[tuple[int, int]]:
    """Each visible GPU's (major, minor) compute capability; (0, 0) where TensorFlow cannot say."""
    return [tuple(details.get("compute_capability") or (0, 0)) for details in _gpu_details()]


def _describe_gpus(gpus: Sequence[Any]) -> str:
    """'NVIDIA H100 (compute capability 9.0), ...' for the log line, the names if details fail."""
    try:
        described = []
        for info in _gpu_details():
            name = info.get("device_name", "GPU")
            capability = info.get("compute_capability")
            described.append(
                f"{name} (compute capability {capability[0]}.{capability[1]})"
                if capability
                else name
            )
        return ", ".join(described)
    except Exception:  # noqa: BLE001 - only a log line
        return ", ".join(getattr(gpu, "name", str(gpu)) for gpu in gpus)


def split_cpu(replicas: int) -> None:
    """Split the host CPU into ``replicas`` logical devices (``--cpu-replicas``).

    Call it before TensorFlow sets up its devices (before any op runs); when it already has,
    the existing logical CPUs are used if there are enough, else a clear ``ValueError``.
    """
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise UserError(f"--cpu-replicas must be a whole number >= 1, got {replicas}")
    if replicas == 1:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * replicas
        )
    except RuntimeError:  # TensorFlow has set up its devices already: use them if they suffice
        available = len(tf.config.list_logical_devices("CPU"))
        if available < replicas:
            raise UserError(
                f"--cpu-replicas {replicas}: TensorFlow already set up {available} logical CPU "
                "device(s) in this process; split the CPU before any TensorFlow op runs "
                "(the command line does)"
            ) from None


def _cpu_replicas_strategy(replicas: int) -> StrategyInfo:
    """``MirroredStrategy`` over ``replicas`` logical CPU devices (the default strategy for 1)."""
    split_cpu(replicas)
    import tensorflow as tf

    if replicas == 1:
        return StrategyInfo(tf.distribute.get_strategy(), "cpu", 1, "CPU (--cpu-replicas 1)")
    devices = [f"/cpu:{index}" for index in range(replicas)]
    strategy = tf.distribute.MirroredStrategy(devices)
    return StrategyInfo(
        strategy,
        "multi-cpu",
        int(strategy.num_replicas_in_sync),
        f"{replicas} logical CPU devices (--cpu-replicas), MirroredStrategy",
    )


def is_chief(strategy: Any) -> bool:
    """Whether this process is the one that writes files: always under a single-client strategy
    (default, Mirrored, TPUStrategy driving every host of a pod slice); under a multi-worker one,
    the ``chief`` task, or worker 0 when there is no chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) if resolver is not None else None
    if task_type in (None, "chief"):
        return True
    if task_type != "worker":
        return False
    try:
        has_chief = "chief" in resolver.cluster_spec().as_dict()
    except Exception:  # noqa: BLE001 - no cluster spec: a single worker
        has_chief = False
    return not has_chief and int(getattr(resolver, "task_id", 0) or 0) == 0


#: The GCE metadata a Cloud TPU VM carries about its slice (one entry per host, comma-separated).
_TPU_WORKERS_METADATA = "instance/attributes/worker-network-endpoints"
_METADATA_URL = "http://metadata.google.internal/computeMetadata/v1/"


def _gce_metadata(key: str, timeout_s: float = 1.0) -> str | None:
    """A GCE metadata value, or None off Google Cloud (bounded: never hangs)."""

    request = urllib.request.Request(_METADATA_URL + key, headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read().decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - off GCE, or no such key
        return None


def tpu_vm_hosts(environ: dict | None = None, metadata=_gce_metadata) -> int:
    """How many hosts the TPU slice attached to this VM has (1 off a TPU VM).

    From ``TPU_WORKER_HOSTNAMES`` when set (comma-separated), else from the VM's GCE metadata
    ``worker-network-endpoints`` (one comma-separated entry per host of the slice).
    """
    environ = os.environ if environ is None else environ
    names = environ.get("TPU_WORKER_HOSTNAMES", "").strip()
    if names:
        return len([name for name in names.split(",") if name.strip()])
    endpoints = metadata(_TPU_WORKERS_METADATA)
    if not endpoints or "<html" in endpoints.lower():
        return 1
    return max(1, len([entry for entry in endpoints.strip().split(",") if entry.strip()]))


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How ``model.compile``/``fit`` must be set for a strategy, and why, for the log."""

    jit_compile: bool | str
    steps_per_execution: int
    notes: tuple[str, ...] = ()


def fit_settings(
    info: StrategyInfo, jit_compile: bool | str, steps_per_execution: int, interval: int
) -> FitSettings:
    """The XLA and ``steps_per_execution`` settings that work under ``info``'s strategy.

    - XLA: TPUStrategy compiles every replica step with XLA itself, and Keras' ``jit_compile``
      would also compile the host-side loop (TPU TensorFlow builds have no XLA:CPU), so it is
      off there; under MirroredStrategy Keras' XLA step fails reading other replicas' variables
      (keras-team/keras#19005), so it is off too.  One GPU or the CPU: as asked.
    - ``steps_per_execution`` > 1 crashes under MirroredStrategy (keras-team/keras#19246): 1
      there.  Elsewhere it must divide the checkpoint ``interval``, or an epoch would run past
      its checkpoint: the largest divisor of ``interval`` not above the request.
    """
    notes = []
    jit = jit_compile
    if info.kind == "tpu" and jit not in (False, "auto"):
        notes.append("XLA: TPUStrategy compiles each step with XLA itself; Keras' jit_compile is off")
        jit = False
    elif info.num_replicas > 1 and jit not in (False, "auto"):
        notes.append(
            f"XLA: off under MirroredStrategy ({info.num_replicas} replicas): Keras' XLA step "
            "cannot read other replicas' variables (keras-team/keras#19005)"
        )
        jit = False
    elif info.kind == "tpu" or info.num_replicas > 1:
        jit = False
    spe = max(1, int(steps_per_execution))
    if info.kind in ("multi-gpu", "multi-cpu") and spe > 1:
        notes.append(
            f"steps_per_execution {spe} -> 1: Keras cannot run several steps per call under "
            "MirroredStrategy (keras-team/keras#19246)"
        )
        spe = 1
    if interval % spe:
        divisor = max(d for d in range(1, spe + 1) if interval % d == 0)
        notes.append(
            f"steps_per_execution {spe} -> {divisor}: it must divide the checkpoint interval "
            f"{interval}, so that every epoch ends on its checkpoint"
        )
        spe = divisor
    return FitSettings(jit, spe, tuple(notes))
