"""tseal: open, verify and read signed, encrypted, losslessly compressed model artifacts.

A ctypes binding over libtseal.so (include/tseal.h). The base package needs only the Python
standard library and NumPy (for tensors); PyTorch is imported lazily, only for device='cuda:N'
and by the `tseal.torch` module.

    import tseal
    with tseal.open("model.tseal", key="bank.key", trust="vendor.sign.pub") as art:
        print(art.model_id, art.version, art.names()[:3])
        w = art.tensor("model.layers.0.mlp.up_proj.weight")      # uint16 BF16 bits, exact
        cfg = art.config()                                         # the carried config.json

Errors are raised as subclasses of `TsealError`, carrying the library's message (which names
the file, tensor and offset concerned) and the TSEAL_E_* code.

The shared library is found, in this order, at $TSEAL_LIB, next to this package
(tseal/libtseal.so), at build/libtseal.so of the source tree this package sits in, and through
the system loader (libtseal.so on LD_LIBRARY_PATH or in the ld.so cache).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Tuple, Union

__version__ = "0.1.0"

__all__ = [
    "open",
    "inspect",
    "verify",
    "Artifact",
    "TensorInfo",
    "FileInfo",
    "GpuModel",
    "GpuTensor",
    "LoadReport",
    "TsealError",
    "InvalidArgumentError",
    "OutOfMemoryError",
    "TsealIOError",
    "CorruptError",
    "UnsupportedError",
    "LimitError",
    "VerifyError",
    "CryptoError",
    "NoGPUError",
    "CUDAError",
    "DeniedError",
    "NotFoundError",
    "TsealFileNotFoundError",
    "InternalError",
    "LibraryNotFoundError",
    "gpu_built",
    "gpu_device_count",
    "library_path",
    "tree_sha256",
    "DTYPES",
]

PathLike = Union[str, bytes, "os.PathLike[str]"]

# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


class TsealError(Exception):
    """A failure reported by libtseal: `code` is the TSEAL_E_* value, `message` its text."""

    code: Optional[int] = None

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(TsealError, ValueError):
    """TSEAL_E_INVAL: bad argument or usage."""

    code = -1


class OutOfMemoryError(TsealError, MemoryError):
    """TSEAL_E_NOMEM: out of (host or device) memory."""

    code = -2


class TsealIOError(TsealError, OSError):
    """TSEAL_E_IO: a file could not be opened, read or written."""

    code = -3


class VerifyError(TsealError):
    """TSEAL_E_VERIFY: a signature or digest does not match, or the signer is not trusted.

    Base class of every rejection of an artifact (CorruptError, DeniedError)."""

    code = -7


class CorruptError(VerifyError):
    """TSEAL_E_CORRUPT: malformed or hostile input."""

    code = -4


class DeniedError(VerifyError):
    """TSEAL_E_DENIED: the deployment policy denies this artifact."""

    code = -11


class UnsupportedError(TsealError):
    """TSEAL_E_UNSUPPORTED: valid but not supported (dtype, version, ...)."""

    code = -5


class LimitError(TsealError):
    """TSEAL_E_LIMIT: the input exceeds a safety limit."""

    code = -6


class CryptoError(TsealError):
    """TSEAL_E_CRYPTO: the cryptographic library failed."""

    code = -8


class NoGPUError(TsealError):
    """TSEAL_E_NO_GPU: no CUDA device, or libtseal was built without CUDA."""

    code = -9


class CUDAError(TsealError):
    """TSEAL_E_CUDA: a CUDA runtime call failed."""

    code = -10


class NotFoundError(TsealError, LookupError):
    """TSEAL_E_NOTFOUND: no tensor or file of that name."""

    code = -12


class TsealFileNotFoundError(NotFoundError, FileNotFoundError):
    """A file named in the arguments (artifact, key, trusted key, policy, ...) does not exist."""

    code = -12


class InternalError(TsealError):
    """TSEAL_E_INTERNAL: a broken invariant in libtseal (a bug: please report it)."""

    code = -13


class LibraryNotFoundError(TsealError, OSError):
    """libtseal.so could not be found or loaded (see the module docstring for the search)."""


_ERRORS = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        OutOfMemoryError,
        TsealIOError,
        CorruptError,
        UnsupportedError,
        LimitError,
        VerifyError,
        CryptoError,
        NoGPUError,
        CUDAError,
        DeniedError,
        NotFoundError,
        InternalError,
    )
}


def _error(code: int, context: Optional[str] = None) -> TsealError:
    lib = _lib()
    msg = lib.tseal_errmsg()
    msg = msg.decode("utf-8", "replace") if msg else ""
    if not msg:
        s = lib.tseal_strerror(code)
        msg = s.decode("utf-8", "replace") if s else "error %d" % code
    if context:
        msg = "%s: %s" % (context, msg)
    cls = _ERRORS.get(code, TsealError)
    return cls(msg, code)


def _check(rc: int, context: Optional[str] = None) -> int:
    if rc < 0:
        raise _error(rc, context)
    return rc


# ------------------------------------------------------------------------------------------
# C structures (include/tseal.h, include/tseal_layout.h); tests/python checks the layouts
# ------------------------------------------------------------------------------------------

_c = ctypes
_MAX_RANK = 8


class _VerifyOpts(_c.Structure):
    _fields_ = [
        ("trust", _c.POINTER(_c.c_char_p)),
        ("n_trust", _c.c_uint),
        ("trust_cas", _c.POINTER(_c.c_char_p)),
        ("n_trust_cas", _c.c_uint),
        ("crls", _c.POINTER(_c.c_char_p)),
        ("n_crls", _c.c_uint),
        ("identities", _c.POINTER(_c.c_char_p)),
        ("n_identities", _c.c_uint),
        ("key", _c.c_char_p),
        ("passphrase_file", _c.c_char_p),
        ("now", _c.c_int64),
        ("threads", _c.c_uint),
        ("progress", _c.c_void_p),
        ("progress_ctx", _c.c_void_p),
        ("policy", _c.c_char_p),
        ("policy_keys", _c.POINTER(_c.c_char_p)),
        ("n_policy_keys", _c.c_uint),
        ("state", _c.c_char_p),
        ("attestations", _c.POINTER(_c.c_char_p)),
        ("n_attestations", _c.c_uint),
        ("gpu", _c.c_int),
        ("gpu_device", _c.c_int),
    ]


class _VerifyReport(_c.Structure):
    _fields_ = [
        ("signature_ok", _c.c_int),
        ("trusted_signatures", _c.c_uint),
        ("decrypted", _c.c_int),
        ("segments_checked", _c.c_uint32),
        ("tensors_checked", _c.c_uint32),
        ("files_checked", _c.c_uint32),
        ("bytes_checked", _c.c_uint64),
        ("policy_allowed", _c.c_int),
        ("state_updated", _c.c_int),
        ("policy_id", _c.c_char * 129),
    ]


class _ContainerInfo(_c.Structure):
    _fields_ = [
        ("format_version", _c.c_uint32),
        ("suite", _c.c_uint32),
        ("suite_name", _c.c_char * 64),
        ("model_id", _c.c_char * 257),
        ("version", _c.c_uint64),
        ("created", _c.c_int64),
        ("expires", _c.c_int64),
        ("container_id", _c.c_char * 33),
        ("artifact_digest", _c.c_char * 65),
        ("chunk_size", _c.c_uint32),
        ("recipient_count", _c.c_uint32),
        ("recipient_key_ids", (_c.c_char * 33) * 64),
        ("signature_count", _c.c_uint32),
        ("signer_key_ids", (_c.c_char * 33) * 16),
        ("signer_subjects", (_c.c_char * 256) * 16),
        ("signer_issuers", (_c.c_char * 256) * 16),
        ("signer_not_after", _c.c_int64 * 16),
        ("primary_signer_key_id", _c.c_char * 33),
        ("segment_count", _c.c_uint32),
        ("payload_bytes", _c.c_uint64),
        ("container_bytes", _c.c_uint64),
        ("original_bytes", _c.c_uint64),
    ]


class _TensorInfo(_c.Structure):
    _fields_ = [
        ("name", _c.c_char_p),
        ("dtype", _c.c_int),
        ("rank", _c.c_uint32),
        ("shape", _c.c_uint64 * _MAX_RANK),
        ("n_elems", _c.c_uint64),
        ("bytes", _c.c_uint64),
        ("rows", _c.c_uint64),
        ("cols", _c.c_uint64),
        ("coded", _c.c_int),
        ("coded_bytes", _c.c_uint64),
        ("file", _c.c_char_p),
        ("sha256", _c.c_uint8 * 32),
    ]


class _Buf(_c.Structure):
    _fields_ = [("data", _c.c_void_p), ("size", _c.c_size_t)]


class _GpuLoadOpts(_c.Structure):
    _fields_ = [
        ("device", _c.c_int),
        ("threads", _c.c_uint),
        ("staging_bytes", _c.c_uint64),
        ("only", _c.POINTER(_c.c_char_p)),
        ("n_only", _c.c_uint),
        ("progress", _c.c_void_p),
        ("progress_ctx", _c.c_void_p),
        ("decrypt_on_gpu", _c.c_int),
    ]


class _GpuLoadReport(_c.Structure):
    _fields_ = [
        ("tensors", _c.c_uint32),
        ("compressed_bytes", _c.c_uint64),
        ("device_bytes", _c.c_uint64),
        ("original_bytes", _c.c_uint64),
        ("staging_bytes", _c.c_uint64),
        ("seconds", _c.c_double),
        ("read_seconds", _c.c_double),
        ("decrypt_seconds", _c.c_double),
        ("copy_wait_seconds", _c.c_double),
    ]


class _CodecParams(_c.Structure):
    _fields_ = [("max_code_bits", _c.c_uint8), ("seg_log2", _c.c_uint8)]


class _CtView(_c.Structure):
    _fields_ = [
        ("mode", _c.c_uint8),
        ("max_code_bits", _c.c_uint8),
        ("seg_log2", _c.c_uint8),
        ("len_width", _c.c_uint8),
        ("elem_size", _c.c_uint8),
        ("const_exp", _c.c_uint8),
        ("seg_bits_min", _c.c_uint32),
        ("n_elems", _c.c_uint64),
        ("rows", _c.c_uint64),
        ("cols", _c.c_uint64),
        ("segs_per_row", _c.c_uint64),
        ("n_segs", _c.c_uint64),
        ("n_groups", _c.c_uint64),
        ("exp_bits", _c.c_uint64),
        ("exp_bytes", _c.c_uint64),
        ("code_len", _c.c_uint8 * 256),
        ("group_base", _c.c_void_p),
        ("seg_lens", _c.c_void_p),
        ("exp_stream", _c.c_void_p),
        ("plane", _c.c_void_p),
        ("raw", _c.c_void_p),
        ("blob_bytes", _c.c_uint64),
    ]


_P = _c.c_void_p
_PP = _c.POINTER(_c.c_void_p)
_I = _c.c_int
_U = _c.c_uint
_U64 = _c.c_uint64
_SZ = _c.c_size_t
_S = _c.c_char_p

# name: (restype, argtypes). Bound lazily: a symbol missing from an older library raises
# UnsupportedError when used, not at import.
_PROTOS = {
    "tseal_strerror": (_S, [_I]),
    "tseal_errmsg": (_S, []),
    "tseal_err_clear": (None, []),
    "tseal_dtype_name": (_S, [_I]),
    "tseal_dtype_size": (_SZ, [_I]),
    "tseal_inspect": (_I, [_S, _c.POINTER(_ContainerInfo)]),
    "tseal_verify": (_I, [_S, _c.POINTER(_VerifyOpts), _c.POINTER(_VerifyReport)]),
    "tseal_open": (_I, [_S, _c.POINTER(_VerifyOpts), _PP]),
    "tseal_close": (None, [_P]),
    "tseal_artifact_model_id": (_S, [_P]),
    "tseal_artifact_version": (_U64, [_P]),
    "tseal_artifact_tensor_count": (_SZ, [_P]),
    "tseal_artifact_tensor_info": (_I, [_P, _SZ, _c.POINTER(_TensorInfo)]),
    "tseal_artifact_find": (_I, [_P, _S, _c.POINTER(_SZ)]),
    "tseal_artifact_read_tensor": (_I, [_P, _SZ, _P, _U64, _U]),
    "tseal_artifact_read_rows": (_I, [_P, _SZ, _U64, _U64, _P, _U64, _U]),
    "tseal_artifact_file_count": (_SZ, [_P]),
    "tseal_artifact_file_info": (
        _I,
        [_P, _SZ, _c.POINTER(_S), _c.POINTER(_U64), _c.POINTER(_I)],
    ),
    "tseal_artifact_read_file": (_I, [_P, _S, _U64, _c.POINTER(_Buf)]),
    "tseal_buf_free": (None, [_c.POINTER(_Buf)]),
    "tseal_secure_buffer": (_P, [_SZ]),
    "tseal_secure_buffer_free": (None, [_P]),
    "tseal_codec_params_default": (None, [_c.POINTER(_CodecParams)]),
    "tseal_codec_encode": (
        _I,
        [_P, _U64, _U64, _c.POINTER(_CodecParams), _c.POINTER(_Buf), _P],
    ),
    "tseal_codec_view": (_I, [_P, _SZ, _c.POINTER(_CtView)]),
    "tseal_gpu_built": (_I, []),
    "tseal_gpu_device_count": (_I, []),
    "tseal_gpu_tensor_upload": (_I, [_c.POINTER(_CtView), _I, _PP]),
    "tseal_gpu_tensor_free": (None, [_P]),
    "tseal_gpu_load_rows": (_I, [_P, _SZ, _U64, _U64, _I, _PP]),
    "tseal_gpu_load_slice": (_I, [_P, _SZ, _U64, _U64, _U64, _U64, _I, _PP]),
    "tseal_gpu_tensor_device_bytes": (_U64, [_P]),
    "tseal_gpu_load": (
        _I,
        [_P, _c.POINTER(_GpuLoadOpts), _PP, _c.POINTER(_GpuLoadReport)],
    ),
    "tseal_gpu_free": (None, [_P]),
    "tseal_gpu_model_check": (_I, [_P, _P, _c.POINTER(_c.c_uint32)]),
    "tseal_gpu_model_count": (_SZ, [_P]),
    "tseal_gpu_model_tensor": (_P, [_P, _SZ]),
    "tseal_gpu_model_find": (_P, [_P, _S]),
    "tseal_gpu_tensor_name": (_S, [_P]),
    "tseal_gpu_tensor_bytes": (_U64, [_P]),
    "tseal_gpu_tensor_shape": (None, [_P, _c.POINTER(_U64), _c.POINTER(_U64)]),
    "tseal_gpu_decode_bf16": (_I, [_P, _P, _P]),
    "tseal_gpu_gemv": (_I, [_P, _P, _P, _U, _P]),
    "tseal_gpu_gemv_async": (_I, [_P, _P, _P, _U, _P]),
    "tseal_gpu_gemv_seg_log2": (_U, [_P]),
    "tseal_gpu_gemv_ref": (_I, [_P, _U64, _U64, _U, _P, _P, _U, _P]),
    "tseal_gpu_set_device": (_I, [_I]),
}


class _Lib:
    """libtseal.so with prototypes bound on first use."""

    def __init__(self, cdll: ctypes.CDLL, path: str):
        self._cdll = cdll
        self.path = path

    def has(self, name: str) -> bool:
        try:
            getattr(self._cdll, name)
            return True
        except AttributeError:
            return False

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            fn = getattr(self._cdll, name)
        except AttributeError:
            raise UnsupportedError(
                "%s: the library lacks %s() (built from an older source tree? rebuild it)"
                % (self.path, name)
            ) from None
        proto = _PROTOS.get(name)
        if proto is not None:
            fn.restype, fn.argtypes = proto[0], proto[1]
        self.__dict__[name] = fn
        return fn


_LIB: Optional[_Lib] = None
_LIB_LOCK = threading.Lock()


def _library_candidates() -> List[str]:
    env = os.environ.get("TSEAL_LIB")
    if env:
        return [env]  # explicit: no fallback that could load another build
    here = os.path.dirname(os.path.abspath(__file__))
    return [
        os.path.join(here, "libtseal.so"),
        os.path.join(os.path.dirname(os.path.dirname(here)), "build", "libtseal.so"),
        "libtseal.so",  # the system loader: LD_LIBRARY_PATH, ld.so.cache
    ]


def _lib() -> _Lib:
    global _LIB
    if _LIB is not None:
        return _LIB
    with _LIB_LOCK:
        if _LIB is not None:
            return _LIB
        tried = []
        for cand in _library_candidates():
            if os.sep in cand and not os.path.exists(cand):
                tried.append("%s (absent)" % cand)
                continue
            try:
                cdll = ctypes.CDLL(cand)
            except OSError as e:
                tried.append("%s (%s)" % (cand, e))
                continue
            _LIB = _Lib(cdll, cand)
            return _LIB
        raise LibraryNotFoundError(
            "libtseal.so not found; build it with `make` and/or set TSEAL_LIB=/path/to/libtseal.so."
            " Tried: " + "; ".join(tried)
        )


def library_path() -> str:
    """Path of the libtseal.so in use (loads it)."""
    return _lib().path


def gpu_built() -> bool:
    """True if libtseal was built with CUDA."""
    return bool(_lib().tseal_gpu_built())


def gpu_device_count() -> int:
    """CUDA devices usable by libtseal (0 without a GPU or without CUDA support)."""
    return max(0, int(_lib().tseal_gpu_device_count()))


# ------------------------------------------------------------------------------------------
# dtypes
# ------------------------------------------------------------------------------------------

# enum tseal_dtype order -> (safetensors name, element bytes, numpy dtype string)
DTYPES: Tuple[Tuple[str, int, str], ...] = (
    ("BOOL", 1, "?"),
    ("U8", 1, "u1"),
    ("I8", 1, "i1"),
    ("F8_E5M2", 1, "u1"),  # bits (numpy has no float8); ml_dtypes.float8_e5m2 with as_bfloat16
    ("F8_E4M3", 1, "u1"),  # bits; ml_dtypes.float8_e4m3fn with as_bfloat16
    ("I16", 2, "<i2"),
    ("U16", 2, "<u2"),
    ("F16", 2, "<f2"),
    ("BF16", 2, "<u2"),  # bits; ml_dtypes.bfloat16 with as_bfloat16
    ("I32", 4, "<i4"),
    ("U32", 4, "<u4"),
    ("F32", 4, "<f4"),
    ("F64", 8, "<f8"),
    ("I64", 8, "<i8"),
    ("U64", 8, "<u8"),
)
_DT_INDEX = {d[0]: i for i, d in enumerate(DTYPES)}


def _np():
    try:
        import numpy
    except ImportError as e:  # pragma: no cover - numpy is installed where tensors are read
        raise ImportError(
            "tseal: reading tensors needs NumPy (Debian: apt-get install python3-numpy;"
            " pip: pip install numpy)"
        ) from e
    return numpy


def _numpy_dtype(dtype_name: str, as_bfloat16: bool):
    np = _np()
    if as_bfloat16 and dtype_name in ("BF16", "F8_E5M2", "F8_E4M3"):
        try:
            import ml_dtypes
        except ImportError as e:
            raise ImportError(
                "tseal: as_bfloat16=True needs the ml_dtypes package; without it tensors come"
                " back as their bits (uint16 for BF16)"
            ) from e
        return {
            "BF16": ml_dtypes.bfloat16,
            "F8_E5M2": ml_dtypes.float8_e5m2,
            "F8_E4M3": ml_dtypes.float8_e4m3fn,
        }[dtype_name]
    return np.dtype(DTYPES[_DT_INDEX[dtype_name]][2])


def _torch_dtype(torch, dtype_name: str):
    m = {
        "BOOL": torch.bool,
        "U8": torch.uint8,
        "I8": torch.int8,
        "I16": torch.int16,
        "F16": torch.float16,
        "BF16": torch.bfloat16,
        "I32": torch.int32,
        "F32": torch.float32,
        "F64": torch.float64,
        "I64": torch.int64,
        # unsigned wider types and float8 only in newer torch; else same-size signed bits
        "U16": getattr(torch, "uint16", torch.int16),
        "U32": getattr(torch, "uint32", torch.int32),
        "U64": getattr(torch, "uint64", torch.int64),
        "F8_E5M2": getattr(torch, "float8_e5m2", torch.uint8),
        "F8_E4M3": getattr(torch, "float8_e4m3fn", torch.uint8),
    }
    return m[dtype_name]


def tree_sha256(data) -> str:
    """The tensor digest of docs/FORMAT.md 5.5 (SHA-256 tree over 1 MiB leaves), as hex.

    `data`: bytes or anything exposing the buffer protocol (a contiguous NumPy array)."""
    mv = memoryview(data).cast("B")
    n = len(mv)
    root = hashlib.sha256(b"tseal-tree-v1\x00")
    leaf = 1 << 20
    for off in range(0, n, leaf):
        root.update(hashlib.sha256(mv[off : off + leaf]).digest())
    root.update(struct.pack("<Q", n))
    return root.hexdigest()


# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------


def _paths(v) -> List[bytes]:
    if v is None:
        return []
    if isinstance(v, (str, bytes)) or hasattr(v, "__fspath__"):
        v = [v]
    out = []
    for p in v:
        if p is None:
            continue
        out.append(os.fsencode(p))
    return out


def _strs(v) -> List[bytes]:
    if v is None:
        return []
    if isinstance(v, (str, bytes)):
        v = [v]
    return [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in v]


def _one_path(v) -> Optional[bytes]:
    if v is None:
        return None
    return os.fsencode(v)


def _carr(items: List[bytes], keep: list):
    if not items:
        return None, 0
    arr = (ctypes.c_char_p * len(items))(*items)
    keep.append(arr)
    return ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)), len(items)


def _verify_opts(
    *,
    key=None,
    trust=None,
    policy=None,
    trust_ca=None,
    crl=None,
    identity=None,
    passphrase_file=None,
    policy_key=None,
    attestation=None,
    state=None,
    now: Optional[int] = None,
    threads: int = 0,
    gpu_device: Optional[int] = None,
):
    keep: list = []
    o = _VerifyOpts()
    o.trust, o.n_trust = _carr(_paths(trust), keep)
    o.trust_cas, o.n_trust_cas = _carr(_paths(trust_ca), keep)
    o.crls, o.n_crls = _carr(_paths(crl), keep)
    o.identities, o.n_identities = _carr(_strs(identity), keep)
    o.policy_keys, o.n_policy_keys = _carr(_paths(policy_key), keep)
    o.attestations, o.n_attestations = _carr(_paths(attestation), keep)
    for field, val in (
        ("key", key),
        ("passphrase_file", passphrase_file),
        ("policy", policy),
        ("state", state),
    ):
        b = _one_path(val)
        keep.append(b)
        setattr(o, field, b)
    o.now = int(now or 0)
    o.threads = int(threads or 0)
    if gpu_device is not None:
        o.gpu, o.gpu_device = 1, int(gpu_device)
    return o, keep


def _need_files(where: str, **named) -> None:
    """Name a missing input file before libtseal does (and raise a FileNotFoundError)."""
    for what, v in named.items():
        for p in _paths(v):
            if not os.path.exists(p):
                raise TsealFileNotFoundError(
                    "%s: %s file %r does not exist" % (where, what.replace("_", " "), os.fsdecode(p)),
                    -12)


def _need_trust(where: str, trust, trust_ca, policy):
    if not (_paths(trust) or _paths(trust_ca) or policy is not None):
        raise InvalidArgumentError(
            "%s: no source of trust: give trust= (trusted signer public key files), trust_ca="
            " (CA root certificates, with identity=) or policy= (a deployment policy file)" % where
        )


# ------------------------------------------------------------------------------------------
# Public header and full verification (no Artifact needed)
# ------------------------------------------------------------------------------------------


def _cstr(b) -> str:
    return bytes(b).split(b"\0", 1)[0].decode("utf-8", "replace")


def inspect(path: PathLike) -> dict:
    """The public header of a container (no key needed, not verified), as a dict."""
    _need_files("tseal.inspect", artifact=path)
    info = _ContainerInfo()
    p = os.fsencode(path)
    _check(_lib().tseal_inspect(p, ctypes.byref(info)))
    ns = info.signature_count
    return {
        "format_version": info.format_version,
        "suite": info.suite,
        "suite_name": _cstr(info.suite_name),
        "model_id": _cstr(info.model_id),
        "version": info.version,
        "created": info.created,
        "expires": info.expires,
        "container_id": _cstr(info.container_id),
        "artifact_digest": _cstr(info.artifact_digest),
        "chunk_size": info.chunk_size,
        "recipient_key_ids": [_cstr(info.recipient_key_ids[i]) for i in range(info.recipient_count)],
        "signer_key_ids": [_cstr(info.signer_key_ids[i]) for i in range(ns)],
        "signer_subjects": [_cstr(info.signer_subjects[i]) for i in range(ns)],
        "signer_issuers": [_cstr(info.signer_issuers[i]) for i in range(ns)],
        "signer_not_after": [info.signer_not_after[i] for i in range(ns)],
        "primary_signer_key_id": _cstr(info.primary_signer_key_id),
        "segment_count": info.segment_count,
        "payload_bytes": info.payload_bytes,
        "container_bytes": info.container_bytes,
        "original_bytes": info.original_bytes,
    }


def verify(
    path: PathLike,
    *,
    key=None,
    trust=None,
    policy=None,
    trust_ca=None,
    crl=None,
    identity=None,
    passphrase_file=None,
    policy_key=None,
    attestation=None,
    state=None,
    threads: int = 0,
) -> dict:
    """Verify a whole container as `tseal verify` does (with `key`: decrypt, decode and check
    every tensor and file digest). Raises VerifyError / DeniedError / ...; returns the report.
    With a policy and `state`, the rollback state file is raised after full verification."""
    _need_trust("tseal.verify", trust, trust_ca, policy)
    _need_files("tseal.verify", artifact=path, key=key, trusted_key=trust, policy=policy,
                CA_certificate=trust_ca, CRL=crl, passphrase=passphrase_file,
                policy_key=policy_key, attestation=attestation)
    o, keep = _verify_opts(
        key=key,
        trust=trust,
        policy=policy,
        trust_ca=trust_ca,
        crl=crl,
        identity=identity,
        passphrase_file=passphrase_file,
        policy_key=policy_key,
        attestation=attestation,
        state=state,
        threads=threads,
    )
    rep = _VerifyReport()
    _check(_lib().tseal_verify(os.fsencode(path), ctypes.byref(o), ctypes.byref(rep)))
    del keep
    return {
        "signature_ok": bool(rep.signature_ok),
        "trusted_signatures": rep.trusted_signatures,
        "decrypted": bool(rep.decrypted),
        "segments_checked": rep.segments_checked,
        "tensors_checked": rep.tensors_checked,
        "files_checked": rep.files_checked,
        "bytes_checked": rep.bytes_checked,
        "policy_allowed": bool(rep.policy_allowed),
        "state_updated": bool(rep.state_updated),
        "policy_id": _cstr(rep.policy_id),
    }


# ------------------------------------------------------------------------------------------
# Secure (locked, wiped-on-free) host memory
# ------------------------------------------------------------------------------------------


class _SecureBlock:
    """tseal_secure_buffer memory (sodium_malloc: locked, guard pages, wiped when freed).

    NumPy arrays made by `array()` keep this object as their base: the memory is freed and
    wiped when the last array viewing it is garbage-collected."""

    __slots__ = ("ptr", "nbytes", "__array_interface__", "__weakref__")

    def __init__(self, nbytes: int):
        lib = _lib()
        self.nbytes = int(nbytes)
        self.ptr = lib.tseal_secure_buffer(max(1, self.nbytes))
        if not self.ptr:
            raise OutOfMemoryError(
                "tseal_secure_buffer(%d): out of locked memory (raise RLIMIT_MEMLOCK, or use"
                " secure=False)" % self.nbytes
            )

    def array(self, dtype, shape):
        np = _np()
        dt = np.dtype(dtype)
        self.__array_interface__ = {
            "version": 3,
            "shape": tuple(int(s) for s in shape),
            "typestr": dt.str,
            "descr": dt.descr,
            "data": (self.ptr, False),
            "strides": None,
        }
        a = np.asarray(self)
        return a.view(dt) if a.dtype != dt else a

    def free(self):
        if self.ptr:
            _lib().tseal_secure_buffer_free(self.ptr)
            self.ptr = None

    def __del__(self):
        try:
            self.free()
        except Exception:
            pass


class _PlainBlock:
    """An ordinary NumPy byte buffer with the same interface as _SecureBlock."""

    __slots__ = ("buf", "ptr", "nbytes")

    def __init__(self, nbytes: int):
        np = _np()
        self.nbytes = int(nbytes)
        self.buf = np.empty(max(1, self.nbytes), dtype=np.uint8)
        self.ptr = self.buf.ctypes.data

    def array(self, dtype, shape):
        np = _np()
        return self.buf[: self.nbytes].view(np.dtype(dtype)).reshape(shape)

    def free(self):
        self.buf = None


def _block(nbytes: int, secure: bool):
    return _SecureBlock(nbytes) if secure else _PlainBlock(nbytes)


# ------------------------------------------------------------------------------------------
# Artifact
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of an artifact (tseal_tensor_info)."""

    name: str
    index: int
    dtype: str  # safetensors spelling: "BF16", "F32", ...
    shape: Tuple[int, ...]
    n_elems: int
    nbytes: int  # original (decoded) bytes
    coded: bool  # exponent-coded (BF16) or stored raw
    coded_bytes: int  # bytes of the stored (compressed) form
    rows: int  # coded tensors: segmentation geometry (rows x cols, cols = last dim); else 0
    cols: int
    file: str  # the safetensors file it came from
    digest: str  # signed tree digest of the original bytes (hex; tseal.tree_sha256)

    @property
    def ratio(self) -> float:
        """Stored size over original size."""
        return self.coded_bytes / self.nbytes if self.nbytes else 1.0


@dataclass(frozen=True)
class FileInfo:
    """One file of the original model folder."""

    path: str
    size: int
    is_safetensors: bool  # rebuilt from tensors (read tensors instead); else read_file()


def _parse_device(device) -> Tuple[str, Optional[int]]:
    if device is None:
        return "cpu", None
    if isinstance(device, int):
        return "cuda", device
    s = str(device).strip()
    if s == "cpu":
        return "cpu", None
    if s == "cuda":
        return "cuda", None
    if s.startswith("cuda:"):
        try:
            idx = int(s[5:])
        except ValueError:
            idx = -1
        if idx >= 0:
            return "cuda", idx
    raise InvalidArgumentError("device %r: expected 'cpu', 'cuda' or 'cuda:N'" % (device,))


def _gpu_index(device, where: str) -> int:
    """Resolve a CUDA device and check that libtseal sees it (before importing torch)."""
    kind, idx = _parse_device(device)
    if kind != "cuda":
        raise InvalidArgumentError("%s: device %r is not a CUDA device" % (where, device))
    lib = _lib()
    n = lib.tseal_gpu_device_count()
    if n <= 0:
        msg = lib.tseal_errmsg()
        msg = msg.decode("utf-8", "replace") if msg else "no CUDA device"
        raise NoGPUError(
            "%s: device %r: libtseal sees no usable CUDA device (%s); use device='cpu'"
            % (where, str(device), msg),
            -9,
        )
    if idx is None:
        torch = sys.modules.get("torch")
        idx = torch.cuda.current_device() if torch is not None else 0
    if idx >= n:
        raise InvalidArgumentError(
            "%s: device %r does not exist (%d CUDA device(s))" % (where, str(device), n)
        )
    return idx


def _require_torch(where: str):
    try:
        import torch
    except ImportError as e:
        raise ImportError("%s needs PyTorch (pip install torch)" % where) from e
    return torch


def _slice_bounds(n: int, rank: int, world_size: int) -> Tuple[int, int]:
    return rank * n // world_size, (rank + 1) * n // world_size


class Artifact:
    """An open, verified artifact (tseal_open): signatures or policy, expiry and key checked,
    manifest decrypted. Tensors are read, authenticated, decrypted and decoded on demand.
    Safe to read from several threads; close() (or the `with` block) releases it."""

    def __init__(self, handle: ctypes.c_void_p, path: str, keep):
        self._h = handle
        self._keep = keep
        self.path = path
        lib = _lib()
        mid = lib.tseal_artifact_model_id(handle)
        self.model_id: str = mid.decode("utf-8", "replace") if mid else ""
        self.version: int = int(lib.tseal_artifact_version(handle))
        self._infos: List[TensorInfo] = []
        self._index = {}
        n = lib.tseal_artifact_tensor_count(handle)
        for i in range(n):
            ti = _TensorInfo()
            _check(lib.tseal_artifact_tensor_info(handle, i, ctypes.byref(ti)))
            name = ti.name.decode("utf-8")
            dt = DTYPES[ti.dtype][0] if 0 <= ti.dtype < len(DTYPES) else "?%d" % ti.dtype
            info = TensorInfo(
                name=name,
                index=i,
                dtype=dt,
                shape=tuple(int(ti.shape[k]) for k in range(ti.rank)),
                n_elems=int(ti.n_elems),
                nbytes=int(ti.bytes),
                coded=bool(ti.coded),
                coded_bytes=int(ti.coded_bytes),
                rows=int(ti.rows),
                cols=int(ti.cols),
                file=ti.file.decode("utf-8", "replace") if ti.file else "",
                digest=bytes(ti.sha256).hex(),
            )
            self._infos.append(info)
            self._index[name] = i
        self._files: List[FileInfo] = []
        for i in range(lib.tseal_artifact_file_count(handle)):
            p = ctypes.c_char_p()
            size = ctypes.c_uint64()
            st = ctypes.c_int()
            _check(
                lib.tseal_artifact_file_info(
                    handle, i, ctypes.byref(p), ctypes.byref(size), ctypes.byref(st)
                )
            )
            self._files.append(
                FileInfo(p.value.decode("utf-8", "replace"), int(size.value), bool(st.value))
            )

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the artifact (its keys and buffers are wiped by libtseal)."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            _lib().tseal_close(h)

    @property
    def closed(self) -> bool:
        return not self._h

    def __enter__(self) -> "Artifact":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else "%d tensors" % len(self._infos)
        return "<tseal.Artifact %s %r v%d, %s>" % (self.path, self.model_id, self.version, state)

    def _handle(self):
        if not self._h:
            raise InvalidArgumentError("%s: the artifact is closed" % self.path)
        return self._h

    # -- listing --------------------------------------------------------------------------

    def names(self) -> List[str]:
        """Tensor names, in the artifact's order (file by file, data order)."""
        self._handle()
        return [t.name for t in self._infos]

    def __len__(self) -> int:
        return len(self._infos)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name) -> bool:
        return name in self._index

    def tensors(self) -> List[TensorInfo]:
        """TensorInfo of every tensor."""
        self._handle()
        return list(self._infos)

    def info(self, name: str) -> TensorInfo:
        """dtype, shape, sizes (original and coded), geometry and digest of one tensor."""
        self._handle()
        i = self._index.get(name)
        if i is None:
            raise NotFoundError("%s: no tensor named %r" % (self.path, name), -12)
        return self._infos[i]

    def files(self) -> List[FileInfo]:
        """Files of the original model folder (safetensors files and carried files)."""
        self._handle()
        return list(self._files)

    # -- carried files --------------------------------------------------------------------

    def read_file(self, path: str, max_bytes: Optional[int] = None) -> bytes:
        """Contents of a carried (non-safetensors) file such as config.json, checked against its
        signed SHA-256. NotFoundError for an unknown path; LimitError above `max_bytes`
        (default: the file's recorded size)."""
        h = self._handle()
        if max_bytes is None:
            max_bytes = next((f.size for f in self._files if f.path == path), 1 << 30)
        buf = _Buf()
        lib = _lib()
        _check(lib.tseal_artifact_read_file(h, path.encode("utf-8"), int(max_bytes), ctypes.byref(buf)))
        try:
            return ctypes.string_at(buf.data, buf.size) if buf.size else b""
        finally:
            if buf.data:
                ctypes.memset(buf.data, 0, buf.size)
            lib.tseal_buf_free(ctypes.byref(buf))

    def read_json(self, path: str):
        """A carried JSON file, parsed."""
        data = self.read_file(path)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CorruptError("%s: %s: not valid JSON: %s" % (self.path, path, e), -4) from None

    def config(self) -> dict:
        """The carried config.json (a Hugging Face model configuration), parsed."""
        return self.read_json("config.json")

    # -- tensors --------------------------------------------------------------------------

    def tensor(
        self,
        name: str,
        device="cpu",
        *,
        rank: int = 0,
        world_size: int = 1,
        dim: int = 0,
        as_bfloat16: bool = False,
        secure: bool = False,
        threads: int = 0,
    ):
        """The tensor's exact values.

        device='cpu': a NumPy array shaped like the tensor; BF16 as uint16 bits (or
        ml_dtypes.bfloat16 with as_bfloat16=True), other dtypes as their NumPy dtype. The whole
        tensor is checked against its signed digest; row slices (below) are authenticated chunk
        by chunk (the digest covers the whole tensor).

        device='cuda:N': a torch tensor on that GPU, decoded there (tseal_gpu_load of this
        tensor + tseal_gpu_decode_bf16); nothing decoded passes through host memory.

        rank / world_size: only slice `rank` of `world_size` along `dim`, i.e. indices
        [rank*n//world_size, (rank+1)*n//world_size) of that dimension (tensor parallelism).
        dim=0 of a coded tensor is read directly (only those rows are decoded).

        secure=True (CPU): the array lives in locked memory from tseal_secure_buffer (never
        swapped, wiped when freed, guard pages) and is freed when the array (and every view of
        it) is garbage-collected. Copies you make (astype, arithmetic, torch.tensor(...)) are
        ordinary memory. secure=False: ordinary NumPy memory (may be swapped; not wiped).
        """
        h = self._handle()
        info = self.info(name)
        if not (isinstance(world_size, int) and world_size >= 1):
            raise InvalidArgumentError("world_size must be an integer >= 1, not %r" % (world_size,))
        if not (isinstance(rank, int) and 0 <= rank < world_size):
            raise InvalidArgumentError("rank must be in [0, %d), not %r" % (world_size, rank))
        ndim = len(info.shape)
        if world_size > 1:
            if ndim == 0:
                raise InvalidArgumentError("%s: a scalar cannot be sliced" % name)
            if not -ndim <= dim < ndim:
                raise InvalidArgumentError(
                    "%s: dim %d out of range for shape %s" % (name, dim, list(info.shape))
                )
            dim %= ndim
        kind, _ = _parse_device(device)
        if kind == "cuda":
            if secure:
                raise InvalidArgumentError("secure=True is for host memory (device='cpu')")
            return self._tensor_cuda(info, device, rank, world_size, dim)
        return self._tensor_cpu(h, info, rank, world_size, dim, as_bfloat16, secure, threads)

    def _tensor_cpu(self, h, info, rank, world_size, dim, as_bfloat16, secure, threads):
        lib = _lib()
        dt = _numpy_dtype(info.dtype, as_bfloat16)
        esize = DTYPES[_DT_INDEX[info.dtype]][1]
        shape = info.shape
        if world_size == 1:
            blk = _block(info.nbytes, secure)
            _check(lib.tseal_artifact_read_tensor(h, info.index, blk.ptr, info.nbytes, threads))
            return blk.array(dt, shape)
        n = shape[dim]
        lo, hi = _slice_bounds(n, rank, world_size)
        out_shape = shape[:dim] + (hi - lo,) + shape[dim + 1 :]
        out_elems = 1
        for s in out_shape:
            out_elems *= s
        out_bytes = out_elems * esize
        rows_per = 0
        if dim == 0 and info.coded and len(shape) >= 2 and info.cols == shape[-1] and shape[0]:
            inner = 1
            for s in shape[1:-1]:
                inner *= s
            if info.rows == shape[0] * inner:
                rows_per = inner
        if out_bytes == 0:
            return _block(0, secure).array(dt, out_shape)
        if rows_per:
            blk = _block(out_bytes, secure)
            _check(
                lib.tseal_artifact_read_rows(
                    h, info.index, lo * rows_per, hi * rows_per, blk.ptr, out_bytes, threads
                )
            )
            return blk.array(dt, out_shape)
        # any other slice: decode the whole tensor (digest-checked), then copy the slice out
        full_blk = _block(info.nbytes, secure)
        try:
            _check(lib.tseal_artifact_read_tensor(h, info.index, full_blk.ptr, info.nbytes, threads))
            full = full_blk.array(dt, shape)
            np = _np()
            blk = _block(out_bytes, secure)
            out = blk.array(dt, out_shape)
            np.copyto(out, full[(slice(None),) * dim + (slice(lo, hi),)])
            del full
            return out
        finally:
            if not secure:
                full_blk.free()
            # a secure full buffer is freed (and wiped) when its last view is gone

    def _tensor_cuda(self, info, device, rank, world_size, dim):
        idx = _gpu_index(device, "%s: tensor %r" % (self.path, info.name))
        torch = _require_torch("tseal: Artifact.tensor(device='cuda:N')")
        with self.load_gpu(idx, names=[info.name]) as gm:
            full = gm.tensor(info.name).decode()
        if world_size == 1:
            return full
        lo, hi = _slice_bounds(info.shape[dim], rank, world_size)
        out = full.narrow(dim, lo, hi - lo).clone(memory_format=torch.contiguous_format)
        del full
        return out

    # -- GPU ------------------------------------------------------------------------------

    def load_gpu(
        self,
        device=0,
        names: Optional[Iterable[str]] = None,
        *,
        threads: int = 0,
        staging_bytes: int = 0,
        decrypt_on_gpu: bool = False,
    ) -> "GpuModel":
        """Load tensors (all, or `names`) onto a CUDA device in their compressed form
        (tseal_gpu_load). decrypt_on_gpu: copy the checked ciphertext and decrypt it on the GPU
        (default suite), so that not even compressed plaintext passes through host memory.
        Raises NoGPUError without a GPU."""
        return GpuModel(self, device, names, threads=threads, staging_bytes=staging_bytes,
                        decrypt_on_gpu=decrypt_on_gpu)

    def upload_slice(self, name: str, device=0, *, rank: int = 0, world_size: int = 1, dim: int = 0,
                     threads: int = 0) -> "GpuTensor":
        """A tensor-parallel slice of a BF16 tensor as its own compressed tensor on a GPU.

        Slices along dim 0 of a tensor of rank >= 2 (column-parallel layers), and along dim 1
        of a matrix when the columns fall on the codec's segment boundaries (row-parallel
        layers packed with --segment 256), are cut from the compressed streams by libtseal
        (tseal_gpu_load_rows / tseal_gpu_load_slice): no decoded weight ever exists in host
        memory. Other slices (unaligned columns, vectors) are decoded into
        locked host memory (tseal_secure_buffer), re-encoded with tseal_codec_encode (lossless:
        it decodes to exactly the slice) and uploaded with tseal_gpu_tensor_upload; every host
        buffer is wiped."""
        idx = _gpu_index(device, "%s: tensor %r" % (self.path, name))
        info = self.info(name)
        if info.dtype != "BF16" or len(info.shape) < 1:
            raise UnsupportedError(
                "%s: upload_slice needs a BF16 tensor (%s is %s %s)"
                % (self.path, name, info.dtype, list(info.shape)), -5)
        lib = _lib()
        if dim == 0 and len(info.shape) >= 2 and info.coded and lib.has("tseal_gpu_load_rows"):
            lo, hi = _slice_bounds(info.shape[0], rank, world_size)
            inner = 1
            for d in info.shape[1:-1]:
                inner *= d
            if hi > lo:
                i = info.index
                p = ctypes.c_void_p()
                _check(lib.tseal_gpu_load_rows(self._handle(), i, lo * inner, hi * inner, idx,
                                               ctypes.byref(p)),
                       "%s: tensor %r" % (self.path, name))
                shape = (hi - lo,) + tuple(info.shape[1:])
                return GpuTensor(p.value, None, name, "BF16", shape, idx)
        if dim == 1 and len(info.shape) == 2 and info.coded and lib.has("tseal_gpu_load_slice"):
            lo, hi = _slice_bounds(info.shape[1], rank, world_size)
            p = ctypes.c_void_p()
            # Columns must fall on segment boundaries (packed with --segment 256 and K/world a
            # multiple of 256, they do); otherwise libtseal says so and the slower path below runs.
            if hi > lo and lib.tseal_gpu_load_slice(self._handle(), info.index, 0, info.shape[0],
                                                    lo, hi, idx, ctypes.byref(p)) == 0:
                return GpuTensor(p.value, None, name, "BF16", (info.shape[0], hi - lo), idx)
        arr = self.tensor(name, rank=rank, world_size=world_size, dim=dim, secure=True,
                          threads=threads)
        try:
            cols = arr.shape[-1] if arr.ndim >= 1 else 1
            rows = arr.size // cols if cols else 0
            return GpuTensor._upload_bf16(arr.ctypes.data, rows, cols, idx, name, tuple(arr.shape))
        finally:
            del arr  # the secure buffer is wiped and freed with its last reference


# ------------------------------------------------------------------------------------------
# GPU: loaded models and tensors
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadReport:
    """What tseal_gpu_load did (tseal_gpu_load_report)."""

    tensors: int
    compressed_bytes: int
    device_bytes: int
    original_bytes: int
    staging_bytes: int
    seconds: float
    read_seconds: float
    decrypt_seconds: float
    copy_wait_seconds: float


class GpuModel:
    """Tensors of an artifact resident on one GPU in compressed form (tseal_gpu_model)."""

    def __init__(self, artifact: Artifact, device=0, names=None, *, threads=0, staging_bytes=0,
                 decrypt_on_gpu=False):
        where = "%s: load onto the GPU" % artifact.path
        self.device = _gpu_index(device, where)
        h_art = artifact._handle()
        lib = _lib()
        keep: list = []
        opts = _GpuLoadOpts()
        opts.device = self.device
        opts.threads = int(threads or 0)
        opts.staging_bytes = int(staging_bytes or 0)
        opts.decrypt_on_gpu = 1 if decrypt_on_gpu else 0
        if names is not None:
            names = list(names)
            for n in names:
                artifact.info(n)  # NotFoundError with a clear message
            if not names:
                raise InvalidArgumentError("%s: names= is empty" % where)
            opts.only, opts.n_only = _carr([n.encode("utf-8") for n in names], keep)
        rep = _GpuLoadReport()
        h = ctypes.c_void_p()
        _check(lib.tseal_gpu_load(h_art, ctypes.byref(opts), ctypes.byref(h), ctypes.byref(rep)))
        self._h = h.value
        self._artifact = artifact  # tensor metadata (shape, dtype) comes from it
        self._infos = {t.name: t for t in artifact.tensors()}
        self.report = LoadReport(
            tensors=rep.tensors,
            compressed_bytes=rep.compressed_bytes,
            device_bytes=rep.device_bytes,
            original_bytes=rep.original_bytes,
            staging_bytes=rep.staging_bytes,
            seconds=rep.seconds,
            read_seconds=rep.read_seconds,
            decrypt_seconds=rep.decrypt_seconds,
            copy_wait_seconds=rep.copy_wait_seconds,
        )

    def _handle(self):
        if not self._h:
            raise InvalidArgumentError("the GPU model was freed")
        return self._h

    def names(self) -> List[str]:
        h = self._handle()
        lib = _lib()
        out = []
        for i in range(lib.tseal_gpu_model_count(h)):
            t = lib.tseal_gpu_model_tensor(h, i)
            if t:  # NULL: not loaded
                out.append(lib.tseal_gpu_tensor_name(t).decode("utf-8"))
        return out

    def __len__(self) -> int:
        return len(self.names())

    def check(self, artifact: Optional[Artifact] = None) -> int:
        """Decode every loaded tensor on the GPU and check it against its signed digest
        (tseal_gpu_model_check; decoded bytes pass through locked host memory, 16 MiB at a
        time, wiped). Returns how many were checked; VerifyError names the first mismatch."""
        art = artifact if artifact is not None else self._artifact
        n = ctypes.c_uint32()
        _check(_lib().tseal_gpu_model_check(art._handle(), self._handle(), ctypes.byref(n)))
        return int(n.value)

    def tensor(self, name: str) -> "GpuTensor":
        """The loaded tensor `name` (NotFoundError if it was not loaded)."""
        h = self._handle()
        p = _lib().tseal_gpu_model_find(h, name.encode("utf-8"))
        if not p:
            raise _error(-12, "GPU model")
        info = self._infos.get(name)
        return GpuTensor(p, self, name, info.dtype if info else "BF16",
                         info.shape if info else None, self.device)

    @property
    def device_bytes(self) -> int:
        return self.report.device_bytes

    def free(self) -> None:
        """Free the device memory now (tensors obtained from this model become invalid)."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            _lib().tseal_gpu_free(h)

    def __enter__(self) -> "GpuModel":
        return self

    def __exit__(self, *exc) -> None:
        self.free()

    def __del__(self):
        try:
            self.free()
        except Exception:
            pass


def _torch_stream(torch, device_index: int, stream) -> ctypes.c_void_p:
    if stream is None:
        stream = torch.cuda.current_stream(device_index)
    raw = getattr(stream, "cuda_stream", stream)
    return ctypes.c_void_p(int(raw) if raw else None)


class GpuTensor:
    """One compressed tensor on a GPU: decode it to BF16, or multiply with it (fused GEMV).

    Obtained from GpuModel.tensor (owned by the model, which stays alive while this object
    does) or from Artifact.upload_slice (owned by this object)."""

    def __init__(self, ptr, owner, name, dtype, shape, device):
        self._p = ptr
        self._owner = owner  # GpuModel, or None when this object owns the tensor
        self.name = name
        self.dtype = dtype
        self.device = device
        lib = _lib()
        r, c = ctypes.c_uint64(), ctypes.c_uint64()
        lib.tseal_gpu_tensor_shape(ptr, ctypes.byref(r), ctypes.byref(c))
        self.rows, self.cols = int(r.value), int(c.value)
        self.shape = tuple(shape) if shape is not None else (self.rows, self.cols)
        n = 1
        for s in self.shape:
            n *= s
        self.nbytes = n * DTYPES[_DT_INDEX[dtype]][1]

    @classmethod
    def _upload_bf16(cls, host_ptr, rows, cols, device, name, shape) -> "GpuTensor":
        lib = _lib()
        params = _CodecParams()
        lib.tseal_codec_params_default(ctypes.byref(params))
        blob = _Buf()
        _check(lib.tseal_codec_encode(host_ptr, rows, cols, ctypes.byref(params), ctypes.byref(blob), None),
               "%s: encode slice" % name)
        try:
            view = _CtView()
            _check(lib.tseal_codec_view(blob.data, blob.size, ctypes.byref(view)), name)
            p = ctypes.c_void_p()
            _check(lib.tseal_gpu_tensor_upload(ctypes.byref(view), device, ctypes.byref(p)), name)
        finally:
            if blob.data:
                ctypes.memset(blob.data, 0, blob.size)
            lib.tseal_buf_free(ctypes.byref(blob))
        t = cls(p.value, None, name, "BF16", shape, device)
        return t

    def _handle(self):
        if not self._p or (self._owner is not None and not self._owner._h):
            raise InvalidArgumentError("GPU tensor %r was freed" % self.name)
        return self._p

    @property
    def device_bytes(self) -> int:
        """Device memory held by the compressed tensor."""
        return int(_lib().tseal_gpu_tensor_device_bytes(self._handle()))

    @property
    def seg_log2(self) -> int:
        """log2 of the segment size that fixes the fused GEMV's reduction order on this tensor
        (pass it to gemv_ref to get the same bits from the plain BF16 weights)."""
        return int(_lib().tseal_gpu_gemv_seg_log2(self._handle()))

    def decode_into(self, out, stream=None) -> None:
        """Decode into the torch tensor `out` (on this GPU, contiguous, nbytes bytes) on
        `stream` (default: torch's current stream). Bit-exact."""
        h = self._handle()
        if not out.is_cuda or out.device.index != self.device:
            raise InvalidArgumentError(
                "%s: output must be on cuda:%d, not %s" % (self.name, self.device, out.device))
        if not out.is_contiguous():
            raise InvalidArgumentError("%s: output must be contiguous" % self.name)
        nb = out.numel() * out.element_size()
        if nb != self.nbytes:
            raise InvalidArgumentError(
                "%s: output has %d bytes, the tensor %d" % (self.name, nb, self.nbytes))
        if nb == 0:
            return
        import torch

        s = _torch_stream(torch, self.device, stream)
        _check(_lib().tseal_gpu_decode_bf16(h, ctypes.c_void_p(out.data_ptr()), s), self.name)

    def decode(self, stream=None):
        """A new torch tensor on this GPU holding the decoded values."""
        torch = _require_torch("tseal: GpuTensor.decode")
        out = torch.empty(self.shape, dtype=_torch_dtype(torch, self.dtype),
                          device="cuda:%d" % self.device)
        self.decode_into(out, stream)
        return out

    def gemv(self, x, out=None, stream=None):
        """out[b] = W @ x[b] for a torch BF16 x of shape (batch, cols), batch 1..16, with the
        fused decode+GEMV kernel (tseal_gpu_gemv; FP32 accumulation, bitwise deterministic)."""
        h = self._handle()
        import torch

        if x.dim() != 2 or x.shape[1] != self.cols:
            raise InvalidArgumentError(
                "%s: x must be (batch, %d), not %s" % (self.name, self.cols, tuple(x.shape)))
        b = x.shape[0]
        if not 1 <= b <= 16:
            raise InvalidArgumentError("%s: batch %d not in 1..16" % (self.name, b))
        if x.dtype != torch.bfloat16 or not x.is_contiguous() or x.device.index != self.device \
                or not x.is_cuda:
            raise InvalidArgumentError(
                "%s: x must be a contiguous bfloat16 tensor on cuda:%d" % (self.name, self.device))
        if out is None:
            out = torch.empty((b, self.rows), dtype=torch.bfloat16, device=x.device)
        elif (tuple(out.shape) != (b, self.rows) or out.dtype != torch.bfloat16
              or not out.is_contiguous() or out.device != x.device):
            raise InvalidArgumentError(
                "%s: out must be a contiguous bfloat16 (%d, %d) tensor on %s"
                % (self.name, b, self.rows, x.device))
        s = _torch_stream(torch, self.device, stream)
        _check(_lib().tseal_gpu_gemv(h, ctypes.c_void_p(x.data_ptr()),
                                     ctypes.c_void_p(out.data_ptr()), b, s), self.name)
        return out

    def free(self) -> None:
        """Free an owned tensor (from upload_slice) now; no-op for a model's tensor."""
        p, self._p = getattr(self, "_p", None), None
        if p and getattr(self, "_owner", None) is None:
            _lib().tseal_gpu_tensor_free(p)

    def __del__(self):
        try:
            self.free()
        except Exception:
            pass

    def __repr__(self) -> str:
        return "<tseal.GpuTensor %s %s %s on cuda:%d>" % (self.name, self.dtype, list(self.shape),
                                                          self.device)


# ------------------------------------------------------------------------------------------
# open
# ------------------------------------------------------------------------------------------

def open(  # noqa: A001 - the API name is tseal.open
    path: PathLike,
    key: Optional[PathLike] = None,
    trust=None,
    policy: Optional[PathLike] = None,
    *,
    trust_ca=None,
    crl=None,
    identity=None,
    passphrase_file: Optional[PathLike] = None,
    policy_key=None,
    attestation=None,
    state: Optional[PathLike] = None,
    now: Optional[int] = None,
    threads: int = 0,
) -> Artifact:
    """Open and verify an artifact for reading (tseal_open).

    key: the recipient's secret key file (required). Trust, one of:
      trust=     trusted signer public key file(s) (a path or a list);
      trust_ca=  CA root certificate(s) for FIPS-suite X.509 signers, with identity= (e.g.
                 "email:release@acme.com") and crl= (CRL files);
      policy=    a deployment policy file (policy_key= the key(s) that must have signed it,
                 attestation= audit reports offered to it, state= a rollback state file that
                 is checked but never raised here).
    passphrase_file: for a passphrase-protected key. now: unix time for the expiry check.

    Raises VerifyError (bad or untrusted signature, wrong key), DeniedError (policy),
    CorruptError, TsealIOError (missing file), ... with libtseal's message.
    """
    where = "tseal.open(%s)" % (os.fsdecode(path) if path is not None else None)
    if key is None:
        raise InvalidArgumentError(
            "%s: key= is required (the recipient secret key file the artifact was encrypted for)"
            % where)
    _need_trust(where, trust, trust_ca, policy)
    _need_files(where, artifact=path, key=key, trusted_key=trust, policy=policy,
                CA_certificate=trust_ca, CRL=crl, passphrase=passphrase_file,
                policy_key=policy_key, attestation=attestation)
    o, keep = _verify_opts(
        key=key,
        trust=trust,
        policy=policy,
        trust_ca=trust_ca,
        crl=crl,
        identity=identity,
        passphrase_file=passphrase_file,
        policy_key=policy_key,
        attestation=attestation,
        state=state,
        now=now,
        threads=threads,
    )
    h = ctypes.c_void_p()
    lib = _lib()
    _check(lib.tseal_open(os.fsencode(path), ctypes.byref(o), ctypes.byref(h)))
    try:
        return Artifact(h.value, os.fsdecode(path), (o, keep))
    except BaseException:
        lib.tseal_close(h.value)
        raise
