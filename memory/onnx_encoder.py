"""A prepared sentence-model graph (memory/onnx_graph.py) run by onnxruntime: the encoder the local
embedders use, with the numpy one (memory/encoder.py) as the reference and the fallback."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memory.encoder import relative_buckets
from memory.onnx_graph import BUCKETS, INPUTS, OUTPUT


class UnusableGraph(RuntimeError):
    """onnxruntime could not load a prepared graph (a damaged file, a runtime that cannot run it)."""


class OnnxEncoder:
    """One onnxruntime session over a prepared graph. `threads` is onnxruntime's intra-op thread
    count; the embedders keep it at 1 and run several batches at once instead. A session of one
    thread starts no threads of its own, so a process may load it and then fork workers that share
    its weights; `pool` may be called from several threads at once."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        # imported here: a process that embeds nothing (the gateway) never loads the runtime
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # on a shared machine a spinning thread takes a core from the process next to it
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.path = path
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's errors share no base class narrower than Exception
            raise UnusableGraph(f"onnxruntime cannot load {path}: {err}") from err
        self.depth = int(self.session.get_outputs()[0].shape[1])
        names = {i.name for i in self.session.get_inputs()}
        meta = self.session.get_modelmeta().custom_metadata_map
        self.buckets = int(meta["relative_buckets"]) if BUCKETS in names else 0

    def pool(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Each depth's token states mean-pooled over the attention mask, shape (batch, depth, hidden)."""
        feed = {INPUTS[0]: ids.astype(np.int64, copy=False), INPUTS[1]: mask.astype(np.int64)}
        if self.buckets:
            feed[BUCKETS] = relative_buckets(ids.shape[1], self.buckets)
        return self.session.run([OUTPUT], feed)[0]
