"""tseal.torch: serve a Hugging Face transformers model straight from a .tseal artifact.

    import tseal.torch
    model = tseal.torch.load_model("model.tseal", key="bank.key", trust="vendor.sign.pub",
                                   device="cuda:0")
    out = model.generate(input_ids.cuda(), max_new_tokens=128, do_sample=False)

The model is built from the artifact's carried config.json (no original file on disk). Every
nn.Linear whose weight is a coded BF16 matrix becomes a `TsealLinear`: the weight stays
compressed on the GPU (about 2/3 of its BF16 size); a forward with few rows (decode steps) runs
the fused decode+GEMV kernel (tseal_gpu_gemv), a forward with more rows (prefill, large batches)
decodes the weight into a transient BF16 buffer (tseal_gpu_decode_bf16) and calls cuBLAS through
torch.nn.functional.linear, which gives bit-identical results to the BF16 model. Other
parameters (embeddings, norms) are decoded once on the GPU into ordinary BF16 parameters.

Inference only (no autograd through TsealLinear). Requires PyTorch; transformers is imported by
load_model only.
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
import time
import warnings
from typing import Callable, Dict, List, Optional, Tuple

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as _e:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "tseal.torch needs PyTorch (pip install torch); the base package `tseal` works without it"
    ) from _e

import ctypes

import tseal as _ts

__all__ = ["TsealLinear", "RefGemvLinear", "load_model", "set_mode", "measure_threshold",
           "model_weight_bytes", "use_reference_gemv", "MODES", "MAX_FUSED_BATCH"]

MODES = ("auto", "fused", "cublas")
MAX_FUSED_BATCH = 16  # tseal_gpu_gemv handles batch 1..16 per call


def _stream_ptr(device: torch.device) -> ctypes.c_void_p:
    if device.type != "cuda":  # tests drive TsealLinear on the CPU with stand-in kernels
        return ctypes.c_void_p(None)
    return ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream or None)


_WARNED = []


def _warn_no_gemv():
    if not _WARNED:
        _WARNED.append(1)
        warnings.warn("tseal: %s has no tseal_gpu_gemv: TsealLinear runs decode + cuBLAS at every"
                      " batch size" % _ts.library_path())


class TsealLinear(nn.Module):
    """nn.Linear replacement whose weight (out_features x in_features, BF16) stays compressed
    on the GPU.

    forward(x), x of shape (..., in_features):
      - mode 'fused', or 'auto' with rows(x) <= fused_max_batch: the fused decode+GEMV kernel
        (tseal_gpu_gemv, up to 16 rows per launch) on torch's current stream; FP32 accumulation,
        bitwise deterministic, bit-identical to tseal's reference GEMV (not to cuBLAS, whose
        reduction order differs).
      - mode 'cublas', or 'auto' above the threshold: decode the weight into a transient BF16
        buffer (tseal_gpu_decode_bf16) and torch.nn.functional.linear (cuBLAS): bit-identical
        to nn.Linear with the original BF16 weight.
    Tensor parallelism: parallel='colwise' holds rows [r*N/w, (r+1)*N/w) of the weight (output
    features), parallel='rowwise' columns (input features) and all-reduces the output over
    `process_group` (torch.distributed), adding the bias after the reduction.
    """

    def __init__(
        self,
        weight: "_ts.GpuTensor",
        bias: Optional[torch.Tensor] = None,
        *,
        mode: str = "auto",
        fused_max_batch: int = 8,
        parallel: Optional[str] = None,
        world_size: int = 1,
        process_group=None,
        name: Optional[str] = None,
    ):
        super().__init__()
        if weight.dtype != "BF16" or len(weight.shape) != 2:
            raise _ts.UnsupportedError(
                "TsealLinear needs a 2-D BF16 tensor; %s is %s %s"
                % (weight.name, weight.dtype, list(weight.shape)), -5)
        if parallel not in (None, "colwise", "rowwise"):
            raise ValueError("parallel must be None, 'colwise' or 'rowwise', not %r" % (parallel,))
        self.tseal_weight = weight
        self.out_features, self.in_features = int(weight.shape[0]), int(weight.shape[1])
        self.device = (torch.device("cuda", weight.device) if isinstance(weight.device, int)
                       else torch.device(weight.device))
        self.tseal_name = name or weight.name
        self.parallel = parallel
        self.world_size = int(world_size)
        self.process_group = process_group
        self.set_mode(mode, fused_max_batch)
        if bias is not None:
            if tuple(bias.shape) != (self.out_features,):
                raise ValueError("%s: bias shape %s != (%d,)"
                                 % (self.tseal_name, tuple(bias.shape), self.out_features))
            self.bias = nn.Parameter(bias.detach(), requires_grad=False)
        else:
            self.register_parameter("bias", None)
        self._meta_weight = None
        lib = _ts._lib()
        # a library without the fused kernel still serves through decode + cuBLAS ('auto')
        self._gemv = lib.tseal_gpu_gemv if lib.has("tseal_gpu_gemv") else None
        # after one checked (synchronous) call, the asynchronous form: no host wait per layer
        self._gemv_async = lib.tseal_gpu_gemv_async if lib.has("tseal_gpu_gemv_async") else None
        self._gemv_checked = False
        self._decode = lib.tseal_gpu_decode_bf16

    # -- configuration --------------------------------------------------------------------

    def set_mode(self, mode: str, fused_max_batch: Optional[int] = None) -> None:
        if mode not in MODES:
            raise ValueError("mode must be one of %s, not %r" % (MODES, mode))
        self.mode = mode
        if fused_max_batch is not None:
            if not 0 <= int(fused_max_batch):
                raise ValueError("fused_max_batch must be >= 0")
            self.fused_max_batch = int(fused_max_batch)

    def extra_repr(self) -> str:
        s = "in_features=%d, out_features=%d, bias=%s, mode=%s, fused_max_batch=%d" % (
            self.in_features, self.out_features, self.bias is not None, self.mode,
            self.fused_max_batch)
        if self.parallel:
            s += ", parallel=%s, world_size=%d" % (self.parallel, self.world_size)
        return s + ", device=%s, compressed_bytes=%d" % (self.device, self.compressed_bytes)

    @property
    def weight(self) -> torch.Tensor:
        """A meta tensor with the weight's shape and dtype (the values stay compressed; use
        decode_weight() for them). For code that inspects `linear.weight.dtype/shape`."""
        if self._meta_weight is None:
            self._meta_weight = torch.empty((self.out_features, self.in_features),
                                            dtype=torch.bfloat16, device="meta")
        return self._meta_weight

    @property
    def compressed_bytes(self) -> int:
        """Device memory held by the compressed weight."""
        return self.tseal_weight.device_bytes

    @property
    def bf16_bytes(self) -> int:
        return self.out_features * self.in_features * 2

    def decode_weight(self) -> torch.Tensor:
        """The weight as a new BF16 tensor on the GPU (decoded there, bit-exact)."""
        return self.tseal_weight.decode()

    # -- forward --------------------------------------------------------------------------

    def _use_fused(self, rows: int) -> bool:
        if self.mode == "cublas":
            return False
        if self._gemv is None:
            if self.mode == "fused":
                raise _ts.UnsupportedError(
                    "%s: mode 'fused': %s has no tseal_gpu_gemv (rebuild it, or use mode 'auto'"
                    " or 'cublas')" % (self.tseal_name, _ts.library_path()), -5)
            _warn_no_gemv()
            return False
        if self.mode == "fused":
            return True
        return rows <= min(self.fused_max_batch, MAX_FUSED_BATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, N = self.in_features, self.out_features
        if x.shape[-1] != K:
            raise ValueError("%s: input has %d features, expected %d"
                             % (self.tseal_name, x.shape[-1], K))
        if x.device != self.device:
            raise ValueError("%s: input is on %s, the weight on %s"
                             % (self.tseal_name, x.device, self.device))
        lead = x.shape[:-1]
        in_dtype = x.dtype
        x2 = x.reshape(-1, K)
        if in_dtype != torch.bfloat16:
            x2 = x2.to(torch.bfloat16)
        if not x2.is_contiguous() or x2.data_ptr() % 16:
            x2 = x2.clone(memory_format=torch.contiguous_format)
        M = x2.shape[0]
        t = self.tseal_weight
        h = t._handle()
        stream = _stream_ptr(self.device)
        bias_now = self.bias if self.parallel != "rowwise" or self.world_size == 1 else None
        if M == 0:
            y = x2.new_empty((0, N))
        elif self._use_fused(M):
            y = torch.empty((M, N), dtype=torch.bfloat16, device=x2.device)
            xp, yp = x2.data_ptr(), y.data_ptr()
            for s in range(0, M, MAX_FUSED_BATCH):
                b = min(MAX_FUSED_BATCH, M - s)
                # The first call per layer is the checked form (waits, reports a segment that
                # does not decode exactly); later ones are enqueued without waiting.
                fn = self._gemv_async if self._gemv_checked and self._gemv_async else self._gemv
                rc = fn(h, ctypes.c_void_p(xp + s * K * 2), ctypes.c_void_p(yp + s * N * 2), b,
                        stream)
                if rc < 0:
                    raise _ts._error(rc, self.tseal_name)
                self._gemv_checked = True
            if bias_now is not None:
                y = y + bias_now
        else:
            w = torch.empty((N, K), dtype=torch.bfloat16, device=x2.device)
            rc = self._decode(h, ctypes.c_void_p(w.data_ptr()), stream)
            if rc < 0:
                raise _ts._error(rc, self.tseal_name)
            y = F.linear(x2, w, bias_now)
            del w  # back to the caching allocator, stream-ordered: safe to reuse
        if self.parallel == "rowwise" and self.world_size > 1:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "%s: a row-parallel layer (world_size=%d) needs torch.distributed initialized,"
                    " one process per rank (e.g. torchrun)" % (self.tseal_name, self.world_size))
            dist.all_reduce(y, group=self.process_group)
            if self.bias is not None:
                y = y + self.bias
        y = y.view(*lead, N)
        return y if in_dtype == torch.bfloat16 else y.to(in_dtype)


class RefGemvLinear(nn.Module):
    """The BF16 reference of TsealLinear's fused path: an ordinary (uncompressed) BF16 weight,
    and at most `fused_max_batch` rows tseal's reference GEMV kernel (tseal_gpu_gemv_ref) in the
    reduction order of segments of 2**seg_log2 columns, above it F.linear (cuBLAS). With the
    seg_log2 of the corresponding TsealLinear (GpuTensor.seg_log2) it gives the same bits as
    TsealLinear in mode 'auto' / 'fused': the end-to-end check of the fused path."""

    def __init__(self, linear: nn.Linear, seg_log2: int, fused_max_batch: int = 8,
                 mode: str = "auto", name: str = ""):
        super().__init__()
        if linear.weight.dtype != torch.bfloat16:
            raise ValueError("RefGemvLinear needs a BF16 weight")
        self.linear = linear
        self.seg_log2 = int(seg_log2)
        self.fused_max_batch = int(fused_max_batch)
        self.mode = mode
        self.name = name
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._ref = _ts._lib().tseal_gpu_gemv_ref

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, N = self.in_features, self.out_features
        w, bias = self.linear.weight, self.linear.bias
        lead, in_dtype = x.shape[:-1], x.dtype
        x2 = x.reshape(-1, K)
        if in_dtype != torch.bfloat16:
            x2 = x2.to(torch.bfloat16)
        if not x2.is_contiguous() or x2.data_ptr() % 16:
            x2 = x2.clone(memory_format=torch.contiguous_format)
        M = x2.shape[0]
        fused = self.mode == "fused" or (self.mode == "auto" and
                                         M <= min(self.fused_max_batch, MAX_FUSED_BATCH))
        if M == 0 or not fused:
            y = F.linear(x2, w, bias)
        else:
            y = torch.empty((M, N), dtype=torch.bfloat16, device=x2.device)
            stream = _stream_ptr(x2.device)
            lib = _ts._lib()
            if lib.has("tseal_gpu_set_device"):  # the reference kernel runs on the current one
                rc = lib.tseal_gpu_set_device(x2.device.index or 0)
                if rc < 0:
                    raise _ts._error(rc, self.name or "tseal_gpu_set_device")
            for s in range(0, M, MAX_FUSED_BATCH):
                b = min(MAX_FUSED_BATCH, M - s)
                rc = self._ref(ctypes.c_void_p(w.data_ptr()), N, K, self.seg_log2,
                               ctypes.c_void_p(x2.data_ptr() + s * K * 2),
                               ctypes.c_void_p(y.data_ptr() + s * N * 2), b, stream)
                if rc < 0:
                    raise _ts._error(rc, self.name or "tseal_gpu_gemv_ref")
            if bias is not None:
                y = y + bias
        y = y.view(*lead, N)
        return y if in_dtype == torch.bfloat16 else y.to(in_dtype)


def use_reference_gemv(model: nn.Module, tseal_model: nn.Module) -> Callable[[], None]:
    """Replace, in the BF16 `model`, every nn.Linear that is a TsealLinear in `tseal_model` (same
    module name) by a RefGemvLinear with that layer's reduction order and threshold. Returns a
    function that puts the original modules back."""
    swaps = []
    for name, m in tseal_model.named_modules():
        if not isinstance(m, TsealLinear):
            continue
        try:
            lin = model.get_submodule(name)
        except AttributeError:
            continue
        if not isinstance(lin, nn.Linear):
            continue
        ref = RefGemvLinear(lin, m.tseal_weight.seg_log2, m.fused_max_batch, m.mode, name)
        _set_module(model, name, ref)
        swaps.append((name, lin))

    def restore():
        for name, lin in swaps:
            _set_module(model, name, lin)

    return restore


# ------------------------------------------------------------------------------------------
# Model helpers
# ------------------------------------------------------------------------------------------


def set_mode(model: nn.Module, mode: str, fused_max_batch: Optional[int] = None) -> int:
    """Switch every TsealLinear of `model` to `mode` ('auto', 'fused', 'cublas'); returns how
    many were switched."""
    n = 0
    for m in model.modules():
        if isinstance(m, TsealLinear):
            m.set_mode(mode, fused_max_batch)
            n += 1
    return n


def model_weight_bytes(model: nn.Module) -> Dict[str, int]:
    """GPU memory of the weights: compressed TsealLinear weights, their BF16 size, and the other
    (ordinary) parameters and buffers."""
    comp = bf16 = 0
    for m in model.modules():
        if isinstance(m, TsealLinear):
            comp += m.compressed_bytes
            bf16 += m.bf16_bytes
    seen = set()
    other = 0
    for p in list(model.parameters()) + list(model.buffers()):
        if id(p) in seen or p.device.type == "meta":
            continue
        seen.add(id(p))
        other += p.numel() * p.element_size()
    return {"compressed_linear_bytes": comp, "bf16_linear_bytes": bf16, "other_bytes": other,
            "total_bytes": comp + other, "total_bf16_bytes": bf16 + other}


@torch.no_grad()
def measure_threshold(model_or_layers, max_batch: int = MAX_FUSED_BATCH, iters: int = 50,
                      apply: bool = True) -> Tuple[int, List[dict]]:
    """Measure, on this GPU, the largest row count for which the fused GEMV beats decode +
    cuBLAS, summed over one layer of each distinct weight shape. Returns (threshold, rows),
    rows a list of {'rows', 'fused_ms', 'cublas_ms'}; with apply=True sets fused_max_batch of
    every TsealLinear of the model to the threshold."""
    if isinstance(model_or_layers, nn.Module):
        layers = [m for m in model_or_layers.modules() if isinstance(m, TsealLinear)]
    else:
        layers = list(model_or_layers)
    if not layers:
        raise ValueError("no TsealLinear layer to measure")
    by_shape: Dict[Tuple[int, int], TsealLinear] = {}
    for m in layers:
        by_shape.setdefault((m.out_features, m.in_features), m)
    probe = list(by_shape.values())
    saved = [(m.mode, m.fused_max_batch) for m in probe]
    results = []
    threshold = 0
    try:
        for rows in range(1, max_batch + 1):
            times = {}
            for mode in ("fused", "cublas"):
                xs = [torch.randn(rows, m.in_features, device=m.device, dtype=torch.bfloat16)
                      for m in probe]
                for m in probe:
                    m.set_mode(mode)
                for m, x in zip(probe, xs):  # warm up
                    m(x)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(iters):
                    for m, x in zip(probe, xs):
                        m(x)
                torch.cuda.synchronize()
                times[mode] = (time.perf_counter() - t0) * 1e3 / iters
            results.append({"rows": rows, "fused_ms": times["fused"], "cublas_ms": times["cublas"]})
            if times["fused"] <= times["cublas"] and threshold == rows - 1:
                threshold = rows
    finally:
        for m, (mode, fmb) in zip(probe, saved):
            m.set_mode(mode, fmb)
    if apply and isinstance(model_or_layers, nn.Module):
        for m in layers:
            m.fused_max_batch = threshold
    return threshold, results


# ------------------------------------------------------------------------------------------
# load_model
# ------------------------------------------------------------------------------------------

_META_LOCK = threading.Lock()


@contextlib.contextmanager
def _params_on_meta():
    """While building the model, every parameter is moved to the meta device as it is
    registered (so no weight memory is allocated or initialised), while buffers (rotary
    frequencies, ...) are computed normally on the CPU."""
    with _META_LOCK:
        orig = nn.Module.register_parameter

        def register_parameter(self, name, param):
            if param is not None and param.device.type != "meta":
                param = param.__class__(param.data.to("meta"), requires_grad=param.requires_grad)
            return orig(self, name, param)

        nn.Module.register_parameter = register_parameter
        try:
            yield
        finally:
            nn.Module.register_parameter = orig


@contextlib.contextmanager
def _default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


_DEFAULT_TP_PLAN = {
    "*.q_proj": "colwise", "*.k_proj": "colwise", "*.v_proj": "colwise",
    "*.o_proj": "rowwise",
    "*.gate_proj": "colwise", "*.up_proj": "colwise", "*.down_proj": "rowwise",
}


def _tp_style(name: str, plan: Dict[str, str], base_prefix: str) -> Optional[str]:
    cands = [name]
    if base_prefix and name.startswith(base_prefix + "."):
        cands.append(name[len(base_prefix) + 1:])
    for pat, style in plan.items():
        for c in cands:
            if fnmatch.fnmatchcase(c, pat):
                s = str(style)
                if s.startswith("colwise") or s.startswith("local_colwise"):
                    return "colwise"
                if s.startswith("rowwise") or s.startswith("local_rowwise"):
                    return "rowwise"
                return None
    return None


class _Names:
    """Maps model parameter names to artifact tensor names (a checkpoint of the base model
    lacks the task head's prefix, and the other way around)."""

    def __init__(self, art: "_ts.Artifact", base_prefix: str):
        self.have = set(art.names())
        self.prefix = base_prefix
        self.used = set()

    def __call__(self, pname: str) -> Optional[str]:
        cands = [pname]
        p = self.prefix
        if p:
            if pname.startswith(p + "."):
                cands.append(pname[len(p) + 1:])
            else:
                cands.append(p + "." + pname)
        for c in cands:
            if c in self.have:
                self.used.add(c)
                return c
        return None


def _model_class(transformers, cfg: dict, model_class):
    if model_class is not None:
        return model_class
    for arch in cfg.get("architectures") or []:
        cls = getattr(transformers, arch, None)
        if cls is not None:
            return cls
    return transformers.AutoModelForCausalLM


def _build_skeleton(transformers, cls, config, dtype, attn_implementation):
    kw = {}
    if attn_implementation is not None:
        kw["attn_implementation"] = attn_implementation
    with _params_on_meta(), _default_dtype(dtype):
        if hasattr(cls, "from_config") and cls.__name__.startswith("Auto"):
            return cls.from_config(config, **kw)
        return cls._from_config(config, **kw)


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, new)


def _param_slots(model: nn.Module) -> Dict[int, List[Tuple[nn.Module, str, str]]]:
    """id(parameter) -> every (module, attribute, full name) holding it (tied weights share)."""
    slots: Dict[int, List[Tuple[nn.Module, str, str]]] = {}
    for mname, mod in model.named_modules(remove_duplicate=False):
        for pname, p in mod._parameters.items():
            if p is None:
                continue
            full = "%s.%s" % (mname, pname) if mname else pname
            lst = slots.setdefault(id(p), [])
            if not any(m is mod and a == pname for m, a, _ in lst):
                lst.append((mod, pname, full))
    return slots


def _host_tensor(art, name, dtype, **slice_kw) -> torch.Tensor:
    """A CPU torch tensor of an artifact tensor (decoded on the host)."""
    import numpy as np

    info = art.info(name)
    arr = art.tensor(name, **slice_kw)
    if info.dtype == "BF16":
        t = torch.from_numpy(np.ascontiguousarray(arr).view(np.int16)).view(torch.bfloat16)
    else:
        if arr.dtype.kind == "u" and arr.dtype.itemsize > 1 and not hasattr(torch, "uint16"):
            arr = arr.view(arr.dtype.str.replace("u", "i"))
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(dtype) if (dtype is not None and t.dtype != dtype and t.is_floating_point()) else t


def load_model(
    path,
    key=None,
    trust=None,
    policy=None,
    *,
    device="cuda:0",
    mode: str = "auto",
    fused_max_batch: int = 8,
    rank: int = 0,
    world_size: int = 1,
    process_group=None,
    tp_plan: Optional[Dict[str, str]] = None,
    dtype=None,
    attn_implementation: Optional[str] = None,
    model_class=None,
    compress: Optional[Callable[[str], bool]] = None,
    threads: int = 0,
    staging_bytes: int = 0,
    keep_artifact: bool = False,
    **open_kwargs,
):
    """Build a ready (eval-mode) transformers model from an artifact.

    path: a .tseal file (opened with key= and trust= / policy= / trust_ca= ..., any keyword of
      tseal.open), or an already open tseal.Artifact (not closed here).
    device: 'cuda:N' (compressed weights, TsealLinear) or 'cpu' (every weight decoded on the
      host into ordinary parameters; for tests and machines without a GPU).
    mode / fused_max_batch: TsealLinear's policy ('auto': fused GEMV up to fused_max_batch rows,
      decode+cuBLAS above; 'fused'; 'cublas'). set_mode() changes it later; measure_threshold()
      measures the crossover on the GPU at hand.
    rank / world_size: tensor parallelism. Linear layers named by tp_plan (default: the config's
      base_model_tp_plan, else q/k/v/gate/up column-parallel and o/down row-parallel) hold only
      this rank's slice; embeddings, norms and the LM head are replicated. Attention modules
      see num_heads / world_size heads. Run one process per rank with torch.distributed
      initialised (row-parallel outputs are all-reduced over process_group).
      Column-parallel slices are cut from the compressed streams (tseal_gpu_load_rows);
      row-parallel ones are made by decoding on the host in locked memory and re-encoding
      (see tseal.Artifact.upload_slice); world_size=1 never decodes weights on the host.
    dtype: the model's dtype (default torch.bfloat16). compress: predicate on module names
      choosing which Linear layers stay compressed (default: all with a coded BF16 weight).
    keep_artifact: keep the artifact open as model.tseal_artifact (else it is closed when
      loading ends).

    The model gets `model.tseal_info`: a dict with the artifact's model_id and version, load
    time, weight memory (model_weight_bytes) and unused artifact tensors.
    """
    import transformers

    if mode not in MODES:
        raise ValueError("mode must be one of %s, not %r" % (MODES, mode))
    if not (isinstance(world_size, int) and world_size >= 1 and 0 <= rank < world_size):
        raise ValueError("need 0 <= rank < world_size, got rank=%r world_size=%r"
                         % (rank, world_size))
    dtype = dtype or torch.bfloat16
    kind, idx = _ts._parse_device(device)
    if kind == "cuda":
        idx = _ts._gpu_index(device, "tseal.torch.load_model")
        dev = torch.device("cuda", idx)
    else:
        if world_size > 1:
            raise ValueError("tensor parallelism (world_size > 1) needs a CUDA device")
        dev = torch.device("cpu")
    t0 = time.perf_counter()
    own = not isinstance(path, _ts.Artifact)
    art = _ts.open(path, key=key, trust=trust, policy=policy, threads=threads,
                   **open_kwargs) if own else path
    try:
        model = _load(transformers, art, dev, idx, mode, fused_max_batch, rank, world_size,
                      process_group, tp_plan, dtype, attn_implementation, model_class, compress,
                      threads, staging_bytes)
    except BaseException:
        if own:
            art.close()
        raise
    model.tseal_info["load_seconds"] = time.perf_counter() - t0
    if own and not keep_artifact:
        art.close()
    elif keep_artifact:
        model.tseal_artifact = art
    return model


def _load(transformers, art, dev, idx, mode, fused_max_batch, rank, world_size, process_group,
          tp_plan, dtype, attn_implementation, model_class, compress, threads, staging_bytes):
    files = {f.path for f in art.files()}
    if "config.json" not in files:
        raise _ts.NotFoundError(
            "%s: the artifact carries no config.json: pack the folder that save_pretrained wrote"
            % art.path, -12)
    cfg = art.config()
    model_type = cfg.get("model_type")
    if not model_type:
        raise ValueError("%s: config.json has no model_type" % art.path)
    rest = {k: v for k, v in cfg.items() if k != "model_type"}
    config = transformers.AutoConfig.for_model(model_type, **rest)
    cls = _model_class(transformers, cfg, model_class)
    model = _build_skeleton(transformers, cls, config, dtype, attn_implementation)
    model.eval()
    base_prefix = getattr(model, "base_model_prefix", "") or ""
    names = _Names(art, base_prefix)
    slots = _param_slots(model)
    on_gpu = dev.type == "cuda"

    # 1. Linear layers with a coded BF16 weight (not tied to another parameter) -> TsealLinear
    plan = {}
    if world_size > 1:
        plan = tp_plan or dict(getattr(config, "base_model_tp_plan", None) or {}) or _DEFAULT_TP_PLAN
    linears = []  # (module name, module, artifact weight name, style)
    if on_gpu:
        for mname, mod in model.named_modules():
            if not isinstance(mod, nn.Linear) or mod.weight is None:
                continue
            if len(slots.get(id(mod.weight), ())) > 1:
                continue  # tied (e.g. lm_head = embed_tokens): stays an ordinary parameter
            if compress is not None and not compress(mname):
                continue
            an = names(mname + ".weight")
            if an is None:
                continue
            info = art.info(an)
            if not (info.dtype == "BF16" and info.coded and
                    tuple(info.shape) == (mod.out_features, mod.in_features)):
                continue
            style = _tp_style(mname, plan, base_prefix) if world_size > 1 else None
            if style == "colwise" and mod.out_features % world_size:
                raise ValueError("%s: %d output features do not split over %d ranks"
                                 % (mname, mod.out_features, world_size))
            if style == "rowwise" and mod.in_features % world_size:
                raise ValueError("%s: %d input features do not split over %d ranks"
                                 % (mname, mod.in_features, world_size))
            linears.append((mname, mod, an, style))

    replaced_params = set()
    gm_lin = None
    whole = [an for _, _, an, style in linears if style is None]
    if whole:
        gm_lin = art.load_gpu(idx, names=whole, threads=threads, staging_bytes=staging_bytes)
    bias_names = {}
    for mname, mod, an, style in linears:
        if style is None:
            gt = gm_lin.tensor(an)
        else:
            gt = art.upload_slice(an, idx, rank=rank, world_size=world_size,
                                  dim=0 if style == "colwise" else 1, threads=threads)
        replaced_params.add(id(mod.weight))
        bias = None
        if mod.bias is not None:
            bn = names(mname + ".bias")
            if bn is None:
                raise _ts.NotFoundError("%s: no tensor for %s.bias" % (art.path, mname), -12)
            bias_names[mname] = bn
            replaced_params.add(id(mod.bias))
            kw = dict(rank=rank, world_size=world_size, dim=0) if style == "colwise" else {}
            bias = _gpu_or_host(art, bn, dev, dtype, threads, **kw)
        new = TsealLinear(gt, bias, mode=mode, fused_max_batch=fused_max_batch, parallel=style,
                          world_size=world_size, process_group=process_group, name=mname)
        _set_module(model, mname, new)

    # 2. every other parameter: decoded once (on the GPU for a CUDA device)
    todo = []  # (param id, artifact name)
    missing = []
    for pid, where in slots.items():
        if pid in replaced_params:
            continue
        an = None
        for _, _, full in where:
            an = names(full)
            if an:
                break
        if an is None:
            missing.append(where[0][2])
        else:
            todo.append((pid, an))
    if missing:
        raise _ts.NotFoundError(
            "%s: the artifact has no tensor for %d parameter(s) of %s: %s"
            % (art.path, len(missing), type(model).__name__, ", ".join(sorted(missing)[:10])), -12)
    gm_other = None
    if on_gpu and todo:
        gm_other = art.load_gpu(idx, names=sorted({an for _, an in todo}), threads=threads,
                                staging_bytes=staging_bytes)
    try:
        for pid, an in todo:
            where = slots[pid]
            mod0, attr0, full0 = where[0]
            old = mod0._parameters[attr0]
            if on_gpu:
                t = gm_other.tensor(an).decode()
                if t.is_floating_point() and t.dtype != old.dtype:
                    t = t.to(old.dtype)
            else:
                t = _host_tensor(art, an, old.dtype, threads=threads)
            if tuple(t.shape) != tuple(old.shape):
                raise ValueError("%s: tensor %s has shape %s, the model's %s expects %s"
                                 % (art.path, an, list(t.shape), full0, list(old.shape)))
            p = nn.Parameter(t, requires_grad=False)
            for mod, attr, _ in where:
                mod._parameters[attr] = p
    finally:
        if gm_other is not None:
            torch.cuda.synchronize(dev)
            gm_other.free()

    # 3. buffers: persistent ones from the artifact when it has them, the rest moved over
    for mname, mod in model.named_modules():
        for bname, buf in list(mod._buffers.items()):
            if buf is None:
                continue
            full = "%s.%s" % (mname, bname) if mname else bname
            an = names(full) if bname not in mod._non_persistent_buffers_set else None
            if an is not None:
                t = _gpu_or_host(art, an, dev, None, threads)
                mod._buffers[bname] = t.to(buf.dtype) if t.dtype != buf.dtype and \
                    t.is_floating_point() else t
            elif buf.device != dev:
                mod._buffers[bname] = buf.to(dev)
    left = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if left:
        raise RuntimeError("internal: parameters left unloaded: %s" % ", ".join(left[:10]))

    # 4. tensor parallelism: attention modules see their local heads
    if world_size > 1:
        for mod in model.modules():
            if not any(hasattr(mod, a) for a in ("q_proj", "qkv_proj")):
                continue
            for attr in ("num_heads", "num_key_value_heads", "hidden_size"):
                v = getattr(mod, attr, None)
                if isinstance(v, int) and not isinstance(v, bool):
                    if v % world_size:
                        raise ValueError("%s = %d does not split over %d ranks"
                                         % (attr, v, world_size))
                    setattr(mod, attr, v // world_size)

    # 5. generation config, bookkeeping
    if "generation_config.json" in files and hasattr(model, "generation_config"):
        try:
            model.generation_config = transformers.GenerationConfig.from_dict(
                art.read_json("generation_config.json"))
        except Exception as e:  # a malformed generation config must not block serving
            warnings.warn("%s: generation_config.json ignored: %s" % (art.path, e))
    unused = sorted(set(art.names()) - names.used)
    model.tseal_info = {
        "path": art.path,
        "model_id": art.model_id,
        "version": art.version,
        "device": str(dev),
        "rank": rank,
        "world_size": world_size,
        "tseal_linear_layers": len(linears),
        "unused_tensors": unused,
        "load_report": gm_lin.report if gm_lin is not None else None,
    }
    model.tseal_info.update(model_weight_bytes(model))
    model._tseal_gpu_models = [g for g in (gm_lin,) if g is not None]  # keep alive with the model
    return model


def _gpu_or_host(art, name, dev, dtype, threads, **slice_kw) -> torch.Tensor:
    if dev.type == "cuda":
        t = art.tensor(name, device="cuda:%d" % dev.index, **slice_kw)
        if dtype is not None and t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype)
        return t
    return _host_tensor(art, name, dtype, threads=threads, **slice_kw)
