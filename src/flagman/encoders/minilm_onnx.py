"""all-MiniLM-L6-v2 under ONNX Runtime, optionally int8-quantised.

Why: torch spends most of a short query's ~13 ms in framework overhead;
ONNX Runtime with the fused BERT graph and int8 weights encodes a short
prompt in about 2 ms on one core.  The graph is exported *locally* from the
packaged weights on first use (torch is a flagman dependency anyway) and kept
in a cache folder (``$FLAGMAN_CACHE_DIR``, default ``~/.cache/flagman``), keyed
by the weights' size and the exporter version, so nothing is downloaded and a
second start is instant.  Tokenisation uses the Rust `tokenizers` library.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from flagman.encoders.minilm_torch import DIM, packaged_model_dir

MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers
N_LAYERS = 6
EXPORT_VERSION = "4"
# ORT's fused SkipLayerNormalization CPU kernel costs ~90 µs a call on a 30-token
# query, Add + LayerNormalization ~20 µs: one int8 query goes from 2.9 to 2.1 ms
# (measured with ORT 1.32 on this 2-core box).  So the graph is exported without
# that fusion, and sessions are told not to redo it.
UNFUSED = ["SkipLayerNormFusion"]


def cache_dir() -> Path:
    """Where exported graphs live; FLAGMAN_CACHE_DIR overrides the per-user default."""
    root = os.environ.get("FLAGMAN_CACHE_DIR") or Path.home() / ".cache" / "flagman"
    return Path(root) / "encoders"


def _fingerprint(model_dir: Path) -> str:
    st = (model_dir / "model.safetensors").stat()
    raw = f"{st.st_size}:{EXPORT_VERSION}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def _export_fp32(model_dir: Path, out: Path, layers: tuple[int, ...] | None = None) -> None:
    """Trace BERT + mean pooling + L2 normalisation into one ONNX graph.

    Eager attention, not SDPA: ORT's BERT optimiser recognises the eager
    pattern and fuses it into (Q)Attention ops, ~10% faster per query.
    `layers` keeps only those transformer layers, in that order.
    """
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(1)
            mean = summed / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    ).eval()
    if layers is not None:
        bert.encoder.layer = torch.nn.ModuleList([bert.encoder.layer[i] for i in layers])
        bert.config.num_hidden_layers = len(layers)
    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "seq"}
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(bert),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _optimize_and_quantize(fp32: Path, out: Path, quantized: bool) -> None:
    """Fuse attention and GELU (ORT's BERT optimiser), then int8 weights if asked."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    fusion = FusionOptions("bert")
    fusion.enable_skip_layer_norm = False  # slower than what it replaces (see UNFUSED)
    opt = optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=DIM,
                         optimization_options=fusion)
    if not quantized:
        opt.save_model_to_file(str(out))
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp) / "fused.onnx"
        opt.save_model_to_file(str(fused))
        # per-channel scales keep cosine to fp32 at ~0.99 (per-tensor: ~0.97); 7-bit
        # range avoids int8 overflow in the VPMADDUBSW path of CPUs without VNNI.
        # Fused ops (com.microsoft domain) defeat shape inference: name the type.
        quantize_dynamic(
            str(fused),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
        )


def layers_tag(layers: tuple[int, ...] | None) -> str:
    """The name and file tag: empty for the whole model, "-l0125" for layers (0, 1, 2, 5)."""
    return "" if layers is None else "-l" + "".join(str(i) for i in layers)


def ensure_onnx_model(
    quantized: bool, *, model_dir: Path | None = None, layers: tuple[int, ...] | None = None
) -> Path:
    """Return the cached graph, exporting it first if needed (atomic rename)."""
    model_dir = model_dir or packaged_model_dir()
    folder = cache_dir() / f"minilm-{_fingerprint(model_dir)}"
    target = folder / f"model{layers_tag(layers)}-{'int8' if quantized else 'fp32'}.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp, _quiet():
        raw = Path(tmp) / "raw.onnx"
        _export_fp32(model_dir, raw, layers)
        staged = Path(tmp) / target.name
        _optimize_and_quantize(raw, staged, quantized)
        os.replace(staged, target)
    return target


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters warn at length about things that do not apply to BERT."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


class MiniLMOnnxEncoder:
    """Same embeddings as `MiniLMTorchEncoder` (int8: cosine ≈ 0.99 to them)."""

    dim = DIM
    fast = True  # a short query costs a few ms: callers may encode on the event loop

    def __init__(self, *, quantized: bool = True, threads: int = 1, batch_size: int = 64,
                 layers: tuple[int, ...] | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = packaged_model_dir()
        if layers is not None and not all(0 <= i < N_LAYERS for i in layers):
            raise ValueError(f"MiniLM has layers 0–{N_LAYERS - 1}, not {layers}")
        path = ensure_onnx_model(quantized, model_dir=model_dir, layers=layers)
        opts = ort.SessionOptions()
        # one thread: a short query gains nothing from a second core, and a gateway
        # serving concurrent requests should not have two encoders fight for two cores
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(
            str(path), opts, providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED
        )
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tok.enable_truncation(MAX_TOKENS)
        tok.no_padding()
        self._tok: Any = tok
        self.batch_size = batch_size
        self.quantized = quantized
        # fp32 is the torch model's vector space; int8 is close (cosine ~0.99) but not
        # equal, so artifacts trained on one refuse the other
        self.name = f"minilm{layers_tag(layers)}" + ("-int8" if quantized else "")
        #: changes whenever the exported graph does: caches of embeddings key on it
        self.fingerprint = f"{path.parent.name}/{path.name}"

    def _run(self, texts: list[str]) -> np.ndarray:
        # the _fast variant skips character offsets, which nothing here reads
        encs = self._tok.encode_batch_fast(texts)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (out,) = self._session.run(None, feeds)
        return np.asarray(out, dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.quantized:
            # dynamic int8 scales activations per tensor, i.e. over the whole batch:
            # a text's vector would depend on its batch-mates (cosine down to 0.97).
            # One text a run keeps references and live queries in the same space, and
            # is no slower on CPU (no padding).
            return np.vstack([self._run([t]) for t in texts])
        if len(texts) <= self.batch_size:
            return self._run(texts)
        # sort by length so each batch pads little, then restore the order
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(texts), self.batch_size):
            idx = order[s : s + self.batch_size]
            out[idx] = self._run([texts[i] for i in idx])
        return out
