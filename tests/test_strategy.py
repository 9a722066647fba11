"""Strategy choice, the bounded TPU connect, mixed precision and per-replica batch sizes.

No network beyond loopback: the unreachable and silent "TPUs" are 127.0.0.1 ports this file opens
and closes itself.  Anything that may block inside TensorFlow's C++ connect runs in a subprocess
with a timeout, so it can never hang pytest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from kcbert_tf.training import strategy as distribution
from kcbert_tf.training.strategy import (
    StrategyInfo,
    TpuUnreachable,
    connect_thread_alive,
    exit_hard_on_hang,
    mixed_precision_policy,
    per_replica_batch_size,
    resolve_strategy,
)

from conftest import REPO


def _quiet_env(**extra: str) -> dict[str, str]:
    """The environment for a TensorFlow subprocess: no GPUs, few logs, this checkout importable."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _closed_loopback_port() -> int:
    """A 127.0.0.1 port that was just bound and closed again: nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SilentServer:
    """A loopback TCP server that accepts every connection and never says a word (no gRPC)."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent TPU", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self._connections.append(connection)

    def __enter__(self) -> "SilentServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for connection in self._connections:
            connection.close()
        assert not self._thread.is_alive()


# --- choosing the strategy ------------------------------------------------------------------------


def test_without_tpu_or_gpu_it_is_the_default_strategy_on_cpu():
    import tensorflow as tf

    info = resolve_strategy()
    assert isinstance(info, StrategyInfo)
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= 2:  # only on a multi-GPU machine
        assert (info.kind, info.num_replicas) == ("multi-gpu", len(gpus))
        return
    assert info.strategy is tf.distribute.get_strategy()  # the default strategy, no wrapper
    assert info.num_replicas == info.strategy.num_replicas_in_sync == 1
    if gpus:
        assert info.kind == "gpu" and "GPU" in info.device_description
    else:
        assert info.kind == "cpu" and "CPU" in info.device_description


def test_one_gpu_is_the_default_strategy_described_for_the_log(monkeypatch):
    import tensorflow as tf

    real = tf.config.list_physical_devices
    fake_gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(
        tf.config,
        "list_physical_devices",
        lambda device_type=None: [fake_gpu] if device_type == "GPU" else real(device_type),
    )
    monkeypatch.setattr(
        distribution,
        "_gpu_details",
        lambda: [{"device_name": "NVIDIA H200", "compute_capability": (9, 0)}],
    )
    info = resolve_strategy()
    assert (info.kind, info.num_replicas) == ("gpu", 1)
    assert info.strategy is tf.distribute.get_strategy()
    assert info.device_description == "1 GPU: NVIDIA H200 (compute capability 9.0)"
    assert mixed_precision_policy(info.kind) == "mixed_bfloat16"


def test_zone_or_project_without_a_tpu_is_an_error():
    with pytest.raises(ValueError, match="without a TPU: pass --tpu"):
        resolve_strategy(zone="us-central1-b")


@pytest.mark.parametrize(
    ("tpu", "message"),
    [
        ("", "--tpu is empty"),
        ("  ", "--tpu is empty"),
        ("grpc://10.0.0.2:port", "bad TPU address 'grpc://10.0.0.2:port'"),
        ("grpc://:8470", "expected grpc://HOST:PORT"),
        ("grpc://10.0.0.2:70000", "expected grpc://HOST:PORT"),
    ],
)
def test_malformed_tpu_arguments_are_clear_errors(tpu, message):
    with pytest.raises(ValueError, match=message):
        resolve_strategy(tpu)


def test_the_timeout_must_be_positive():
    with pytest.raises(ValueError, match="--tpu-timeout must be a positive number"):
        resolve_strategy("grpc://127.0.0.1:8470", connect_timeout_s=0)


def test_grpc_addresses_default_to_port_8470_like_tensorflow():
    assert distribution._grpc_endpoints("grpc://10.0.0.2") == [("10.0.0.2", 8470)]
    assert distribution._grpc_endpoints("grpc://a:1,grpc://b:2") == [("a", 1), ("b", 2)]


# --- an unreachable or silent TPU -----------------------------------------------------------------


def test_a_closed_port_fails_at_once_naming_the_address():
    address = f"grpc://127.0.0.1:{_closed_loopback_port()}"
    started = time.monotonic()
    with pytest.raises(TpuUnreachable) as caught:
        resolve_strategy(address, connect_timeout_s=60)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert address in message and "connection refused" in message
    assert "--tpu local" in message and "firewall" in message and "zone" in message
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.address == address and not caught.value.connect_thread_alive
    assert not connect_thread_alive()
    exit_hard_on_hang()  # returns: no connect thread is stuck


def test_tpu_local_without_a_tpu_is_a_clear_error_not_a_traceback():
    import tensorflow as tf

    if tf.config.list_physical_devices("TPU"):
        pytest.skip("this machine has a TPU")
    with pytest.raises(TpuUnreachable) as caught:
        resolve_strategy("local", connect_timeout_s=60)
    message = str(caught.value)
    assert "'local'" in message and "initializing the TPU system" in message
    assert "Cloud TPU VM" in message and "leave --tpu out" in message
    assert not caught.value.connect_thread_alive and not connect_thread_alive()


def test_a_tpu_name_off_google_cloud_asks_for_zone_and_project(monkeypatch):
    # TensorFlow reads the zone and project from the GCE metadata server: point it at a closed
    # loopback port, as off Google Cloud, instead of letting it look up metadata.google.internal.
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{_closed_loopback_port()}")
    with pytest.raises(TpuUnreachable) as caught:
        resolve_strategy("my-tpu", connect_timeout_s=60)
    message = str(caught.value)
    assert "'my-tpu'" in message and "creating the TPUClusterResolver" in message
    assert "zone and project were not given" in message and "--tpu-zone" in message
    assert not connect_thread_alive()


def test_a_tpu_name_without_the_cloud_tpu_client_says_what_to_install():
    if importlib.util.find_spec("googleapiclient") is not None:
        pytest.skip("the Google API client is installed: resolving a name would use the network")
    with pytest.raises(TpuUnreachable, match="pip install cloud-tpu-client"):
        resolve_strategy("my-tpu", zone="us-central1-b", project="my-project", connect_timeout_s=60)
    assert not connect_thread_alive()


_HANGING_CONNECT = """
import sys, time
from kcbert_tf.training.strategy import TpuUnreachable, connect_thread_alive, exit_hard_on_hang
from kcbert_tf.training.strategy import resolve_strategy
started = time.monotonic()
try:
    resolve_strategy(sys.argv[1], connect_timeout_s=3)
except TpuUnreachable as error:
    print(f"after {time.monotonic() - started:.1f} s, thread alive: "
          f"{error.connect_thread_alive} {connect_thread_alive()}", flush=True)
    print(f"kcbert-tf: error: {error}", file=sys.stderr, flush=True)
    exit_hard_on_hang(2)
    print("exit_hard_on_hang returned", flush=True)
    sys.exit(3)
print("resolve_strategy returned", flush=True)
"""


def test_a_port_that_never_speaks_grpc_times_out_and_the_process_ends():
    with SilentServer() as server:
        address = f"grpc://127.0.0.1:{server.port}"
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", _HANGING_CONNECT, address],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env=_quiet_env(),
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    assert elapsed < 60
    assert "thread alive: True True" in result.stdout
    error = result.stderr
    assert f"timed out after 3 s connecting to the TPU '{address}'" in error
    assert "experimental_connect_to_cluster" in error and "--tpu-timeout" in error


# --- more than one replica ------------------------------------------------------------------------


_TWO_REPLICAS = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
from kcbert_tf.training import strategy as distribution

info = distribution._mirrored_strategy(["/cpu:0", "/cpu:1"], "2 logical CPUs")
per_replica = distribution.per_replica_batch_size(8, info.num_replicas, kind=info.kind)
try:
    distribution.per_replica_batch_size(7, info.num_replicas, kind=info.kind)
    odd_batch = None
except ValueError as error:
    odd_batch = str(error)

features = tf.reshape(tf.range(48, dtype=tf.float32), (16, 3))
dataset = tf.data.Dataset.from_tensor_slices((features, tf.reduce_sum(features, 1)))
dataset = dataset.batch(8, drop_remainder=True)
first = next(iter(info.strategy.experimental_distribute_dataset(dataset)))
shapes = [int(x.shape[0]) for x in info.strategy.experimental_local_results(first[0])]

with info.strategy.scope():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
history = model.fit(dataset, epochs=1, verbose=0)
print(json.dumps({
    "type": type(info.strategy).__name__, "kind": info.kind, "replicas": info.num_replicas,
    "per_replica": per_replica, "shapes": shapes, "odd_batch": odd_batch,
    "steps_loss": len(history.history["loss"]),
}))
"""


def test_a_mirrored_strategy_over_two_replicas_splits_the_batch():
    result = subprocess.run(
        [sys.executable, "-c", _TWO_REPLICAS],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=_quiet_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["type"] == "MirroredStrategy"
    assert (report["kind"], report["replicas"], report["per_replica"]) == ("multi-gpu", 2, 4)
    assert report["shapes"] == [4, 4]  # each replica gets its half of the global batch
    assert report["odd_batch"] == (
        "--batch-size 7 is not divisible by the 2 replicas of these GPUs; "
        "use a multiple of 2 such as 6 or 8"
    )
    assert report["steps_loss"] == 1


# --- mixed precision ------------------------------------------------------------------------------


def test_auto_precision_is_float32_on_cpu_and_bfloat16_on_tpu():
    assert mixed_precision_policy("cpu") is None
    assert mixed_precision_policy("tpu") == "mixed_bfloat16"
    assert mixed_precision_policy("tpu", " AUTO ") == "mixed_bfloat16"


@pytest.mark.parametrize(
    ("kind", "requested", "policy"),
    [
        ("cpu", "bf16", "mixed_bfloat16"),
        ("cpu", "fp16", "mixed_float16"),
        ("cpu", "off", None),
        ("tpu", "off", None),
        ("tpu", "bf16", "mixed_bfloat16"),
        ("gpu", "fp16", "mixed_float16"),
        ("multi-gpu", "off", None),
    ],
)
def test_explicit_precision_is_obeyed(kind, requested, policy):
    assert mixed_precision_policy(kind, requested) == policy


@pytest.mark.parametrize(
    ("capabilities", "policy"),
    [
        ([(8, 0)], "mixed_bfloat16"),
        ([(9, 0), (8, 6)], "mixed_bfloat16"),
        ([(9, 0), (7, 5)], "mixed_float16"),  # one older GPU decides for all
        ([(7, 0)], "mixed_float16"),
        ([None], "mixed_float16"),  # TensorFlow cannot tell: the safe choice
    ],
)
def test_auto_precision_on_gpus_follows_compute_capability(monkeypatch, capabilities, policy):
    details = [{} if cc is None else {"compute_capability": cc} for cc in capabilities]
    monkeypatch.setattr(distribution, "_gpu_details", lambda: details)
    kind = "gpu" if len(capabilities) == 1 else "multi-gpu"
    assert mixed_precision_policy(kind) == policy


def test_bad_precision_requests_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown precision 'fp8': use one of auto, bf16, fp16"):
        mixed_precision_policy("gpu", "fp8")
    with pytest.raises(ValueError, match="fp16 is not supported on TPU: use bf16"):
        mixed_precision_policy("tpu", "fp16")
    with pytest.raises(ValueError, match="unknown device kind 'ipu'"):
        mixed_precision_policy("ipu")


# --- per-replica batch sizes ----------------------------------------------------------------------


def test_per_replica_batch_size_divides_the_global_batch():
    assert per_replica_batch_size(32, 4) == 8
    assert per_replica_batch_size(7, 1) == 7


def test_an_indivisible_batch_names_the_replicas_and_the_fix():
    with pytest.raises(ValueError) as caught:
        per_replica_batch_size(30, 4, kind="tpu")
    assert str(caught.value) == (
        "--batch-size 30 is not divisible by the 4 replicas of this TPU; "
        "use a multiple of 4 such as 28 or 32"
    )
    with pytest.raises(ValueError, match="this machine; use a multiple of 8 such as 8$"):
        per_replica_batch_size(2, 8)


@pytest.mark.parametrize(
    ("batch", "replicas", "message"),
    [(0, 4, "--batch-size must be at least 1"), (32, 0, "replicas must be at least 1")],
)
def test_nonsense_sizes_are_errors(batch, replicas, message):
    with pytest.raises(ValueError, match=message):
        per_replica_batch_size(batch, replicas)


# --- pod slices, the chief, fit settings per strategy -----------------------------------------


def test_tpu_vm_hosts_from_the_environment_or_the_gce_metadata():
    assert distribution.tpu_vm_hosts({"TPU_WORKER_HOSTNAMES": "10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5"}) == 4
    endpoints = "id0:8470:10.130.0.2,id1:8470:10.130.0.3"
    assert distribution.tpu_vm_hosts({}, metadata=lambda key: endpoints if "worker-network" in key else None) == 2
    assert distribution.tpu_vm_hosts({}, metadata=lambda key: None) == 1  # off Google Cloud
    assert distribution.tpu_vm_hosts({}, metadata=lambda key: "id0:8470:10.130.0.2") == 1


def test_tpu_local_on_a_multi_host_slice_is_refused_with_the_single_client_command(monkeypatch):
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "t1v-n-0-w-0,t1v-n-0-w-1,t1v-n-0-w-2,t1v-n-0-w-3")
    start = time.time()
    with pytest.raises(TpuUnreachable) as caught:
        resolve_strategy("local")
    message = str(caught.value)
    assert "multi-host TPU slice (4 hosts)" in message and "single-client" in message
    assert "once" in message and "--tpu TPU_NAME" in message and "not on each host" in message
    assert time.time() - start < 5 and not connect_thread_alive()


class _Resolver:
    def __init__(self, task_type, task_id, cluster):
        self.task_type, self.task_id, self._cluster = task_type, task_id, cluster

    def cluster_spec(self):
        import tensorflow as tf

        return tf.train.ClusterSpec(self._cluster)


class _Strategy:
    def __init__(self, resolver=None):
        self.cluster_resolver = resolver


def test_only_the_chief_writes():
    workers = {"worker": ["a:1", "b:1"]}
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert distribution.is_chief(_Strategy())  # single client: default, Mirrored, TPUStrategy
    assert distribution.is_chief(_Strategy(_Resolver(None, None, {})))
    assert distribution.is_chief(_Strategy(_Resolver("worker", 0, workers)))
    assert not distribution.is_chief(_Strategy(_Resolver("worker", 1, workers)))
    assert distribution.is_chief(_Strategy(_Resolver("chief", 0, with_chief)))
    assert not distribution.is_chief(_Strategy(_Resolver("worker", 0, with_chief)))
    assert not distribution.is_chief(_Strategy(_Resolver("evaluator", 0, with_chief)))


def _info(kind: str, replicas: int) -> StrategyInfo:
    return StrategyInfo(strategy=None, kind=kind, num_replicas=replicas, device_description=kind)


@pytest.mark.parametrize(
    "kind, replicas, jit, spe, interval, expected",
    [
        ("tpu", 8, True, 100, 10_000, (False, 100)),  # TPUStrategy compiles with XLA itself
        ("tpu", 8, "auto", 100, 1_000, (False, 100)),
        ("multi-gpu", 2, True, 100, 10_000, (False, 1)),  # keras#19005, keras#19246
        ("multi-cpu", 4, "auto", 4, 12, (False, 1)),
        ("gpu", 1, True, 100, 10_000, (True, 100)),  # one GPU: as asked
        ("cpu", 1, "auto", 4, 6, ("auto", 3)),  # 4 does not divide 6: the largest divisor below
        ("cpu", 1, False, 7, 100, (False, 5)),
    ],
)
def test_fit_settings_per_strategy(kind, replicas, jit, spe, interval, expected):
    settings = distribution.fit_settings(_info(kind, replicas), jit, spe, interval)
    assert (settings.jit_compile, settings.steps_per_execution) == expected
    assert interval % settings.steps_per_execution == 0
    assert bool(settings.notes) == ((jit is True and expected[0] is False) or spe != expected[1])


def test_cpu_replicas_needs_a_whole_number_and_excludes_a_tpu():
    with pytest.raises(ValueError, match="--cpu-replicas must be a whole number >= 1"):
        resolve_strategy(cpu_replicas=0)
    with pytest.raises(ValueError, match="--cpu-replicas and --tpu exclude each other"):
        resolve_strategy("local", cpu_replicas=2)
    info = resolve_strategy(cpu_replicas=1)
    assert (info.kind, info.num_replicas, info.is_chief) == ("cpu", 1, True)
