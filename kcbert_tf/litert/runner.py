"""Running a LiteRT model file on packed inputs, with the XNNPACK delegate, without TensorFlow.

:class:`LiteRtRunner` holds one ``ai_edge_litert`` interpreter over a ``model.tflite`` written by
``export-litert`` (inputs ``token_ids``, ``segment_ids``, ``padding_mask``: int32 ``[batch,
length]`` of any size; one float32 output, the head's logits).  Called on a batch, it resizes the
inputs when the batch's shape differs from the last one (so batches of one length bucket reuse
the plan), invokes and returns a copy of the output.  XNNPACK is LiteRT's default CPU delegate:
it takes the matrix multiplications, int8 ones included (dynamic-range quantization: the weights
int8, the activations quantized per batch row on the fly); :meth:`LiteRtRunner.delegation` says
which operations it took and which run on LiteRT's own kernels.

Example (``model.tflite`` from ``kcbert-tf export-litert``)::

    runner = LiteRtRunner.from_file("nsmc-int8/model.tflite", threads=2)
    logits = runner({"token_ids": ids, "segment_ids": 0 * ids, "padding_mask": (ids > 0).astype("int32")})
"""

from __future__ import annotations

import collections
import os

import numpy as np

from kcbert_tf.file_reading import read_bytes

__all__ = ["INPUT_NAMES", "LiteRtRunner"]

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


class LiteRtRunner:
    """One interpreter over a LiteRT model's bytes; ``threads`` None: every core."""

    def __init__(self, model_content: bytes, *, threads: int | None = None, delegate: bool = True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._interpreter = Interpreter(model_content=model_content, num_threads=threads or os.cpu_count() or 1,
                                        experimental_op_resolver_type=resolver)
        inputs = {}
        for detail in self._interpreter.get_input_details():
            name = next((n for n in INPUT_NAMES if n in detail["name"]), None)
            if name is None:
                raise ValueError(f"a LiteRT model input {detail['name']!r} is none of {', '.join(INPUT_NAMES)}")
            inputs[name] = detail["index"]
        self._inputs = inputs
        (output,) = self._interpreter.get_output_details()
        self._output = output["index"]
        self._shape: tuple[int, ...] | None = None

    @classmethod
    def from_file(cls, path: str, **kwargs) -> "LiteRtRunner":
        return cls(read_bytes(path), **kwargs)

    def __call__(self, inputs: dict) -> np.ndarray:
        """The model's float32 outputs for one batch of packed inputs (``[batch, length]``)."""
        shape = tuple(np.shape(inputs["token_ids"]))
        interpreter = self._interpreter
        if shape != self._shape:
            for index in self._inputs.values():
                interpreter.resize_tensor_input(index, shape)
            interpreter.allocate_tensors()
            self._shape = shape
        for name, index in self._inputs.items():
            interpreter.set_tensor(index, np.ascontiguousarray(inputs[name], np.int32))
        interpreter.invoke()
        return interpreter.get_tensor(self._output).copy()

    def delegation(self) -> dict:
        """Which of the model's operations XNNPACK took and which run on LiteRT's own kernels:
        ``{"partitions": n, "delegated": {op: count}, "not_delegated": {op: count}}`` (after a
        call, so that the plan exists).  A delegate node stands for the nodes it replaced: those
        between its inputs and its outputs."""
        native = self._interpreter._interpreter  # the node list is not in the public API
        nodes = range(native.NumNodes())
        names = {i: native.NodeName(i) for i in nodes}
        producer = {}
        for i in nodes:
            if names[i] != "DELEGATE":
                for tensor in native.NodeOutputs(i):
                    producer[tensor] = i
        taken: set[int] = set()
        delegates = [i for i in nodes if names[i] == "DELEGATE"]
        for d in delegates:
            boundary = set(native.NodeInputs(d))
            stack = [t for t in native.NodeOutputs(d) if t not in boundary]
            while stack:
                node = producer.get(stack.pop())
                if node is None or node in taken:
                    continue
                taken.add(node)
                stack.extend(t for t in native.NodeInputs(node) if t >= 0 and t not in boundary)
        count = collections.Counter
        return {
            "partitions": len(delegates),
            "delegated": dict(count(names[i] for i in taken).most_common()),
            "not_delegated": dict(count(names[i] for i in nodes if names[i] != "DELEGATE" and i not in taken).most_common()),
        }
