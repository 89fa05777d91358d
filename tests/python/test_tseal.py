"""Tests of the tseal Python package (python/tseal): run by `make python-test`.

CPU paths everywhere (open, verify, decode to NumPy through the C decoders, slices, files,
errors, struct layouts, offline pip install); GPU tests and torch tests skip with a reason when
there is no CUDA device, no torch or no transformers.

Environment: TSEAL_BIN (the tseal CLI, default build/tseal) and TSEAL_LIB (libtseal.so, default:
the package's own search, i.e. build/libtseal.so of this tree).
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "python"))

import tseal  # noqa: E402

TSEAL_BIN = os.environ.get("TSEAL_BIN") or os.path.join(REPO, "build", "tseal")


def run(*args, cwd=None, check=True):
    p = subprocess.run([TSEAL_BIN, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError("tseal %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode,
                                                       p.stderr))
    return p


# ---- a tiny safetensors writer/reader of our own (the test's independent view) ------------

def f32_to_bf16_bits(a):
    """Round-to-nearest-even float32 -> BF16 bits (NaN kept quiet)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(a, dtype=np.float32))
    r[nan] = 0x7FC0
    return r


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype string, numpy array of the right bytes)."""
    header, off, blobs = {}, 0, []
    for name, dt, arr in tensors:
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    """name -> (dtype, shape, raw bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[name] = (v["dtype"], tuple(v["shape"]), data[base + b : base + e])
    return out


# ---- fixture: keys, a model folder, containers, policies --------------------------------

class Env:
    pass


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    if not os.access(TSEAL_BIN, os.X_OK):
        pytest.fail("the tseal CLI is missing at %s (make all, or set TSEAL_BIN)" % TSEAL_BIN)
    d = tmp_path_factory.mktemp("tseal")
    e = Env()
    e.dir = d
    for args in (["--sign", "vendor"], ["--sign", "mallory"], ["--recipient", "bank"],
                 ["--recipient", "other"]):
        run("keygen", *args, "-q", cwd=d)
    (d / "pass.txt").write_text("correct horse battery staple\n")
    run("keygen", "--recipient", "locked", "--passphrase-file", "pass.txt", "-q", cwd=d)

    m = d / "model"
    run("synth", "-o", m, "--preset", "tiny", "--seed", "7")
    rng = np.random.default_rng(1)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3.0e38, 1.0, -2.5],
                       dtype=np.float32)
    b3 = rng.normal(0, 0.02, size=(4, 6, 10)).astype(np.float32)
    b3.reshape(-1)[: len(special)] = special
    extra = [
        ("extra.bf16_3d", "BF16", f32_to_bf16_bits(b3)),
        ("extra.bf16_1d", "BF16", f32_to_bf16_bits(rng.normal(0, 1, size=37))),
        ("extra.bf16_odd", "BF16", f32_to_bf16_bits(rng.normal(0, 0.05, size=(7, 300)))),
        ("extra.empty", "BF16", np.zeros((0, 8), dtype=np.uint16)),
        ("extra.f32", "F32", rng.normal(size=(5, 3)).astype("<f4")),
        ("extra.i64", "I64", np.array([1, -2, 3, 1 << 40], dtype="<i8")),
        ("extra.u8", "U8", np.arange(7, dtype=np.uint8)),
        ("extra.bool", "BOOL", np.array([True, False, True])),
        ("extra.scalar", "F16", np.array(1.5, dtype="<f2")),
    ]
    write_safetensors(m / "extra.safetensors", extra)
    (m / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    e.model = m
    e.original = {}
    for fn in ("extra.safetensors", "model.safetensors"):  # the folder's files in name order
        e.original.update(read_safetensors(m / fn))

    e.art = d / "model.tseal"
    run("pack", m, "-o", e.art, "--sign-key", "vendor.sign.key", "-r", "bank.pub", "-r",
        "locked.pub", "--model-id", "test/tiny", "--version", "3", "-q", cwd=d)
    run("policy", "init", "--trust", "vendor.sign.pub", "--model", "test/tiny", "--min-version",
        "3", "-o", "site.json", cwd=d)
    run("policy", "init", "--trust", "vendor.sign.pub", "--model", "test/tiny", "--min-version",
        "4", "-o", "site4.json", cwd=d)
    e.key, e.trust = d / "bank.key", d / "vendor.sign.pub"
    return e


@pytest.fixture()
def art(env):
    a = tseal.open(env.art, key=env.key, trust=env.trust)
    yield a
    a.close()


# ---- the library and its structures -------------------------------------------------------

def test_library_found():
    p = tseal.library_path()
    assert os.path.exists(p) or p == "libtseal.so"
    want = os.environ.get("TSEAL_LIB")
    if want:
        assert p == want


LAYOUTS = {
    "tseal_verify_opts": tseal._VerifyOpts,
    "tseal_verify_report": tseal._VerifyReport,
    "tseal_container_info": tseal._ContainerInfo,
    "tseal_tensor_info": tseal._TensorInfo,
    "tseal_buf": tseal._Buf,
    "tseal_gpu_load_opts": tseal._GpuLoadOpts,
    "tseal_gpu_load_report": tseal._GpuLoadReport,
    "tseal_codec_params": tseal._CodecParams,
    "tseal_ct_view": tseal._CtView,
}


def test_struct_layouts_match_the_header(tmp_path):
    """Every ctypes structure has the size and field offsets of include/tseal.h."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to read the header's layouts")
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "tseal.h"', "int main(void) {"]
    for cname, S in LAYOUTS.items():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (cname, cname))
        for f in S._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (cname, f[0], cname, f[0]))
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", os.path.join(REPO, "include"), str(src), "-o", str(exe)], check=True)
    got = dict(l.split() for l in subprocess.run([str(exe)], capture_output=True, text=True,
                                                  check=True).stdout.splitlines())
    for cname, S in LAYOUTS.items():
        assert int(got[cname]) == __import__("ctypes").sizeof(S), cname
        for f in S._fields_:
            assert int(got["%s.%s" % (cname, f[0])]) == getattr(S, f[0]).offset, (cname, f[0])


def test_dtype_table_matches_the_library():
    lib = tseal._lib()
    for i, (name, size, _) in enumerate(tseal.DTYPES):
        assert lib.tseal_dtype_name(i).decode() == name
        assert lib.tseal_dtype_size(i) == size


# ---- open and verify ----------------------------------------------------------------------

def test_open_with_trusted_signer(env, art):
    assert art.model_id == "test/tiny"
    assert art.version == 3
    assert art.names() == list(env.original)  # file by file, data order
    assert len(art) == len(env.original)
    assert "model.norm.weight" in art and "nope" not in art
    assert "test/tiny" in repr(art)


def test_open_with_policy(env):
    with tseal.open(env.art, key=env.key, policy=env.dir / "site.json") as a:
        assert a.model_id == "test/tiny"
        assert len(a.names()) == len(env.original)
    assert a.closed


def test_policy_denies_with_every_reason(env):
    with pytest.raises(tseal.DeniedError) as ei:
        tseal.open(env.art, key=env.key, policy=env.dir / "site4.json")
    assert "version 3 < minimum 4" in str(ei.value)
    assert ei.value.code == -11
    assert isinstance(ei.value, tseal.VerifyError)


def test_untrusted_signer(env):
    with pytest.raises(tseal.VerifyError) as ei:
        tseal.open(env.art, key=env.key, trust=env.dir / "mallory.sign.pub")
    assert "not trusted" in str(ei.value)
    assert str(env.art.name) in str(ei.value)


def test_several_trusted_keys_as_a_list(env):
    with tseal.open(env.art, key=env.key, trust=[env.dir / "mallory.sign.pub", env.trust]) as a:
        assert a.version == 3


def test_wrong_key(env):
    with pytest.raises(tseal.VerifyError) as ei:
        tseal.open(env.art, key=env.dir / "other.key", trust=env.trust)
    assert "not encrypted for recipient key" in str(ei.value)


def test_passphrase_protected_key(env):
    with tseal.open(env.art, key=env.dir / "locked.key", passphrase_file=env.dir / "pass.txt",
                    trust=env.trust) as a:
        assert np.array_equal(a.tensor("extra.u8"), np.arange(7, dtype=np.uint8))
    bad = env.dir / "bad-pass.txt"
    bad.write_text("wrong\n")
    with pytest.raises(tseal.TsealError):
        tseal.open(env.art, key=env.dir / "locked.key", passphrase_file=bad, trust=env.trust)


def test_missing_files_and_arguments(env):
    with pytest.raises(FileNotFoundError) as ei:
        tseal.open(env.dir / "nope.tseal", key=env.key, trust=env.trust)
    assert "nope.tseal" in str(ei.value) and isinstance(ei.value, tseal.NotFoundError)
    with pytest.raises(FileNotFoundError) as ei:
        tseal.open(env.art, key=env.dir / "nokey.key", trust=env.trust)
    assert "nokey.key" in str(ei.value)
    with pytest.raises(tseal.InvalidArgumentError) as ei:
        tseal.open(env.art, trust=env.trust)
    assert "key=" in str(ei.value)
    with pytest.raises(ValueError) as ei:  # InvalidArgumentError is a ValueError
        tseal.open(env.art, key=env.key)
    assert "trust=" in str(ei.value) and "policy=" in str(ei.value)


def test_tampered_payload_is_caught(env, tmp_path):
    bad = tmp_path / "tampered.tseal"
    data = bytearray(env.art.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(tseal.VerifyError) as ei:
        with tseal.open(bad, key=env.key, trust=env.trust) as a:
            for n in a.names():
                a.tensor(n)
            for f in a.files():
                if not f.is_safetensors:
                    a.read_file(f.path)
    assert "tampered.tseal" in str(ei.value)
    assert "signed hash" in str(ei.value) or "signature" in str(ei.value)


def test_tampered_header_is_caught(env, tmp_path):
    bad = tmp_path / "header.tseal"
    data = bytearray(env.art.read_bytes())
    data[40] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(tseal.VerifyError) as ei:
        tseal.open(bad, key=env.key, trust=env.trust)
    assert "header.tseal" in str(ei.value)


def test_inspect_and_verify(env):
    h = tseal.inspect(env.art)
    assert h["model_id"] == "test/tiny" and h["version"] == 3
    assert len(h["recipient_key_ids"]) == 2 and len(h["signer_key_ids"]) == 1
    assert len(h["artifact_digest"]) == 64
    rep = tseal.verify(env.art, key=env.key, trust=env.trust)
    assert rep["signature_ok"] and rep["decrypted"]
    assert rep["tensors_checked"] == len(env.original)
    rep = tseal.verify(env.art, policy=env.dir / "site.json")
    assert rep["policy_allowed"]
    with pytest.raises(tseal.DeniedError):
        tseal.verify(env.art, policy=env.dir / "site4.json")


def test_fips_suite_with_ca_and_identity(env, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make a CA")
    d = tmp_path

    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=Test Root",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         "rel.key.pem", "-out", "rel.csr", "-subj", "/CN=release")
    os.chmod(d / "rel.key.pem", 0o600)
    (d / "leaf.cnf").write_text("keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning"
                                "\nsubjectAltName=email:release@test.example\n")
    ossl("x509", "-req", "-in", "rel.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "rel.pem", "-days", "10", "-extfile", "leaf.cnf")
    run("keygen", "--recipient", "fbank", "--suite", "fips", "-q", cwd=d)
    run("pack", env.model, "-o", "fips.tseal", "--suite", "fips", "--sign-key", "rel.key.pem",
        "--sign-cert", "rel.pem", "-r", "fbank.pub", "--model-id", "test/tiny", "--version", "3",
        "-q", cwd=d)
    with tseal.open(d / "fips.tseal", key=d / "fbank.key", trust_ca=d / "ca.pem",
                    identity="email:release@test.example") as a:
        name = "model.layers.1.mlp.down_proj.weight"
        assert a.tensor(name).tobytes() == env.original[name][2]
    with pytest.raises(tseal.VerifyError):
        tseal.open(d / "fips.tseal", key=d / "fbank.key", trust_ca=d / "ca.pem",
                   identity="email:someone-else@test.example")


# ---- tensors ------------------------------------------------------------------------------

def test_every_tensor_is_bit_exact(env, art):
    for name, (dt, shape, raw) in env.original.items():
        a = art.tensor(name)
        assert isinstance(a, np.ndarray)
        assert a.shape == shape, name
        assert a.tobytes() == raw, name
        want = {"BF16": np.uint16, "F32": np.float32, "I64": np.int64, "U8": np.uint8,
                "BOOL": np.bool_, "F16": np.float16}.get(dt)
        if want is not None:
            assert a.dtype == want, name


def test_info(env, art):
    name = "model.layers.0.mlp.up_proj.weight"
    i = art.info(name)
    dt, shape, raw = env.original[name]
    assert (i.name, i.dtype, i.shape) == (name, "BF16", shape)
    assert i.nbytes == len(raw) and i.n_elems == len(raw) // 2
    assert i.coded and 0 < i.coded_bytes < i.nbytes and i.ratio < 0.8
    assert (i.rows, i.cols) == shape
    assert i.file == "model.safetensors"
    assert i.digest == tseal.tree_sha256(raw)
    f = art.info("extra.f32")
    assert f.dtype == "F32" and not f.coded and f.file == "extra.safetensors"
    assert f.digest == tseal.tree_sha256(env.original["extra.f32"][2])
    assert art.info("extra.scalar").shape == ()
    assert [t.name for t in art.tensors()] == art.names()
    with pytest.raises(tseal.NotFoundError) as ei:
        art.info("nope")
    assert "nope" in str(ei.value) and isinstance(ei.value, LookupError)
    with pytest.raises(LookupError):
        art.tensor("nope")


def test_tree_digest_spans_leaves():
    data = bytes(range(256)) * (4096 * 2 + 7)  # > 2 MiB: three leaves
    leaves = b"".join(hashlib.sha256(data[o : o + (1 << 20)]).digest()
                      for o in range(0, len(data), 1 << 20))
    want = hashlib.sha256(b"tseal-tree-v1\x00" + leaves + struct.pack("<Q", len(data))).hexdigest()
    assert tseal.tree_sha256(data) == want
    assert tseal.tree_sha256(b"") == hashlib.sha256(b"tseal-tree-v1\x00" + bytes(8)).hexdigest()


def test_as_bfloat16(env, art):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    name = "extra.bf16_3d"
    a = art.tensor(name, as_bfloat16=True)
    assert a.dtype == ml_dtypes.bfloat16
    bits = art.tensor(name)
    assert a.view(np.uint16).tobytes() == bits.tobytes()
    f = a.astype(np.float32)
    want = (bits.astype(np.uint32) << 16).view(np.float32)
    assert np.array_equal(f, want, equal_nan=True)


def test_secure_tensor(env, art):
    name = "model.embed_tokens.weight"
    a = art.tensor(name, secure=True)
    assert a.tobytes() == env.original[name][2]
    assert type(a.base).__name__ == "_SecureBlock"
    view = a[3:5]
    del a
    assert view.tobytes() == env.original[name][2][3 * 256 * 2 : 5 * 256 * 2]  # still alive
    del view
    s = art.tensor("extra.bf16_odd", rank=1, world_size=3, secure=True)
    assert type(s.base).__name__ == "_SecureBlock"


@pytest.mark.parametrize("name", ["model.layers.0.self_attn.k_proj.weight", "extra.bf16_3d",
                                  "extra.bf16_odd", "extra.bf16_1d", "extra.f32", "extra.i64",
                                  "lm_head.weight"])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_row_slices_concatenate_to_the_full_tensor(art, name, world_size):
    full = art.tensor(name)
    parts = [art.tensor(name, rank=r, world_size=world_size) for r in range(world_size)]
    n = full.shape[0]
    for r, p in enumerate(parts):
        lo, hi = r * n // world_size, (r + 1) * n // world_size
        assert p.shape == (hi - lo,) + full.shape[1:]
        assert p.tobytes() == full[lo:hi].tobytes()
    assert np.concatenate(parts).tobytes() == full.tobytes()


@pytest.mark.parametrize("name", ["model.layers.0.mlp.down_proj.weight", "extra.bf16_3d",
                                  "extra.f32"])
def test_column_slices_concatenate_to_the_full_tensor(art, name):
    full = art.tensor(name)
    for w in (2, 3):
        parts = [art.tensor(name, rank=r, world_size=w, dim=-1) for r in range(w)]
        assert np.concatenate(parts, axis=-1).tobytes() == full.tobytes()
        mid = [art.tensor(name, rank=r, world_size=w, dim=1) for r in range(w)]
        assert np.concatenate(mid, axis=1).tobytes() == full.tobytes()


def test_slice_arguments(art):
    with pytest.raises(ValueError):
        art.tensor("extra.f32", rank=2, world_size=2)
    with pytest.raises(ValueError):
        art.tensor("extra.f32", world_size=0)
    with pytest.raises(ValueError):
        art.tensor("extra.f32", rank=0, world_size=2, dim=2)
    with pytest.raises(ValueError):
        art.tensor("extra.scalar", rank=0, world_size=2)
    # more ranks than rows: some slices are empty
    parts = [art.tensor("extra.i64", rank=r, world_size=6) for r in range(6)]
    assert sum(p.shape[0] for p in parts) == 4
    assert art.tensor("extra.empty", rank=1, world_size=2).shape == (0, 8)


def test_concurrent_reads(env, art):
    names = list(env.original)
    errors = []

    def worker(k):
        try:
            for n in names[k::4]:
                assert art.tensor(n, threads=1).tobytes() == env.original[n][2]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


# ---- carried files -------------------------------------------------------------------------

def test_files_and_config(env, art):
    files = {f.path: f for f in art.files()}
    assert set(files) == {"config.json", "generation_config.json", "model.safetensors",
                          "extra.safetensors", "tokenizer.json"}
    assert files["model.safetensors"].is_safetensors and not files["config.json"].is_safetensors
    assert files["config.json"].size == (env.model / "config.json").stat().st_size
    assert art.read_file("config.json") == (env.model / "config.json").read_bytes()
    assert art.read_file("tokenizer.json") == (env.model / "tokenizer.json").read_bytes()
    cfg = art.config()
    assert cfg["model_type"] == "llama" and cfg["hidden_size"] == 256
    with pytest.raises(tseal.NotFoundError):
        art.read_file("nope.json")
    with pytest.raises(tseal.UnsupportedError) as ei:
        art.read_file("model.safetensors")
    assert "safetensors" in str(ei.value)
    with pytest.raises(tseal.LimitError):
        art.read_file("config.json", max_bytes=10)


def test_closed_artifact(env):
    a = tseal.open(env.art, key=env.key, trust=env.trust)
    a.close()
    a.close()  # idempotent
    with pytest.raises(ValueError) as ei:
        a.names()
    assert "closed" in str(ei.value)
    with pytest.raises(ValueError):
        a.tensor("extra.u8")


# ---- GPU: clear errors without one, real checks with one -----------------------------------

def _has_gpu():
    try:
        return tseal.gpu_device_count() > 0
    except tseal.TsealError:
        return False


def test_cuda_device_without_gpu(art):
    if _has_gpu():
        pytest.skip("a CUDA device is present")
    with pytest.raises(tseal.NoGPUError) as ei:
        art.tensor("extra.bf16_3d", device="cuda:0")
    msg = str(ei.value)
    assert "cuda:0" in msg and "no usable CUDA device" in msg and "device='cpu'" in msg
    with pytest.raises(tseal.NoGPUError):
        art.load_gpu(0)
    with pytest.raises(ValueError):
        art.tensor("extra.bf16_3d", device="tpu:0")


def test_torch_load_model_without_gpu(env):
    if _has_gpu():
        pytest.skip("a CUDA device is present")
    pytest.importorskip("torch")
    import tseal.torch as tt

    with pytest.raises(tseal.NoGPUError):
        tt.load_model(env.art, key=env.key, trust=env.trust, device="cuda:0")


def _ref_model(env, device):
    import torch
    transformers = pytest.importorskip("transformers")
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        str(env.model), dtype=torch.bfloat16).to(device)
    ref.eval()
    return ref


def test_torch_load_model_on_cpu_matches_transformers(env):
    """The model rebuilt from the artifact alone (config.json + tensors) computes exactly what
    transformers computes from the original folder."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import tseal.torch as tt

    model = tt.load_model(env.art, key=env.key, trust=env.trust, device="cpu")
    assert model.tseal_info["model_id"] == "test/tiny"
    assert "extra.f32" in model.tseal_info["unused_tensors"]
    ref = _ref_model(env, "cpu")
    ids = torch.tensor([[1, 5, 9, 300, 17, 2, 44, 1000]])
    with torch.no_grad():
        a = model(ids).logits
        b = ref(ids).logits
    assert torch.equal(a, b)
    sd = ref.state_dict()
    for n, p in model.state_dict().items():
        assert torch.equal(p, sd[n]), n


def test_transformers_save_pretrained_folder_with_tied_embeddings(env, tmp_path):
    """tseal pack takes the folder save_pretrained writes; tied weights come back tied."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import tseal.torch as tt

    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=200,
                                   tie_word_embeddings=True)
    torch.manual_seed(0)
    src = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    src.save_pretrained(str(tmp_path / "hf"))
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"),
                                                            dtype=torch.bfloat16).eval()
    run("pack", tmp_path / "hf", "-o", tmp_path / "hf.tseal", "--sign-key",
        env.dir / "vendor.sign.key", "-r", env.dir / "bank.pub", "--model-id", "t/hf",
        "--version", "1", "-q")
    shutil.rmtree(tmp_path / "hf")  # the artifact alone
    model = tt.load_model(tmp_path / "hf.tseal", key=env.key, trust=env.trust, device="cpu")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    ids = torch.tensor([[1, 7, 42, 199, 3]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, ref(ids).logits)


def test_tseal_linear_forward_with_stand_in_kernels():
    """TsealLinear's plumbing (flattening, 16-row launches, pointers, bias, dtypes, modes) on
    the CPU, with Python stand-ins for tseal_gpu_gemv and tseal_gpu_decode_bf16."""
    torch = pytest.importorskip("torch")
    import ctypes

    import tseal.torch as tt

    N, K = 24, 40
    g = torch.Generator().manual_seed(0)
    W = torch.randn(N, K, generator=g).to(torch.bfloat16)
    Wf = W.float()
    calls = {"gemv": [], "decode": 0}
    GEMV = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_uint, ctypes.c_void_p)
    DEC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

    def view(ptr, n):
        return torch.frombuffer((ctypes.c_uint16 * n).from_address(ptr), dtype=torch.bfloat16)

    def gemv(h, xp, yp, b, s):
        calls["gemv"].append(b)
        x = view(xp, b * K).view(b, K).float()
        view(yp, b * N).copy_((x @ Wf.T).to(torch.bfloat16).view(-1))
        return 0

    def dec(h, dp, s):
        calls["decode"] += 1
        view(dp, N * K).copy_(W.view(-1))
        return 0

    def bad(h, xp, yp, b, s):
        return -10

    class StandIn:
        dtype, shape, name, device, device_bytes = "BF16", (N, K), "fake", "cpu", 1234

        def _handle(self):
            return 1

        def decode(self):
            return W.clone()

    gemv_c, dec_c, bad_c = GEMV(gemv), DEC(dec), GEMV(bad)
    bias = torch.randn(N, generator=g).to(torch.bfloat16)
    lin = tt.TsealLinear(StandIn(), bias, mode="auto", fused_max_batch=8)
    lin._gemv, lin._gemv_async, lin._decode = gemv_c, None, dec_c
    assert lin.weight.shape == (N, K) and lin.weight.device.type == "meta"
    assert lin.compressed_bytes == 1234 and lin.bf16_bytes == N * K * 2
    assert "fused_max_batch=8" in repr(lin)

    def ref_fused(x):
        x2 = x.reshape(-1, K).to(torch.bfloat16).float()
        return ((x2 @ Wf.T).to(torch.bfloat16) + bias).view(*x.shape[:-1], N)

    x = torch.randn(2, 3, K, generator=g).to(torch.bfloat16)  # 6 rows: fused
    assert torch.equal(lin(x), ref_fused(x)) and calls["gemv"] == [6]
    x = torch.randn(3, 4, K, generator=g).to(torch.bfloat16)  # 12 rows: decode + linear
    assert torch.equal(lin(x), torch.nn.functional.linear(x, W, bias)) and calls["decode"] == 1
    lin.set_mode("fused")
    calls["gemv"].clear()
    x = torch.randn(40, K, generator=g).to(torch.bfloat16)
    assert torch.equal(lin(x), ref_fused(x)) and calls["gemv"] == [16, 16, 8]
    # after the first checked call, the asynchronous entry point
    async_calls = []

    def gemv_async(h, xp, yp, b, s):
        async_calls.append(b)
        return gemv(h, xp, yp, b, s)

    async_c = GEMV(gemv_async)
    lin._gemv_async = async_c
    calls["gemv"].clear()
    assert torch.equal(lin(x), ref_fused(x)) and async_calls == [16, 16, 8]
    assert calls["gemv"] == [16, 16, 8]  # (the stand-in async calls the same body)
    fresh = tt.TsealLinear(StandIn(), None, mode="fused")
    fresh._gemv, fresh._gemv_async = gemv_c, async_c
    async_calls.clear()
    fresh(x[:20])
    assert async_calls == [4]  # first launch checked, the second asynchronous
    xt = torch.randn(K, 5, generator=g).to(torch.bfloat16).t()  # not contiguous
    assert torch.equal(lin(xt), ref_fused(xt))
    xf = torch.randn(2, K, generator=g)  # float32 in, float32 out
    y = lin(xf)
    assert y.dtype == torch.float32 and torch.equal(y, ref_fused(xf).float())
    assert lin(torch.empty(0, K, dtype=torch.bfloat16)).shape == (0, N)
    lin.set_mode("cublas")
    calls["decode"] = 0
    assert torch.equal(lin(x[:1]), torch.nn.functional.linear(x[:1], W, bias))
    assert calls["decode"] == 1
    with pytest.raises(ValueError):
        lin(torch.randn(2, K + 1, dtype=torch.bfloat16))
    with pytest.raises(ValueError):
        lin.set_mode("fast")
    lin.set_mode("fused")
    lin._gemv = lin._gemv_async = bad_c
    with pytest.raises(tseal.CUDAError) as ei:
        lin(x[:2])
    assert "fake" in str(ei.value)
    row = tt.TsealLinear(StandIn(), None, parallel="rowwise", world_size=2)
    row._gemv = gemv_c
    with pytest.raises(RuntimeError) as ei:
        row(x[:1])
    assert "torch.distributed" in str(ei.value)

    # the reference module: same chunking and bias handling as the fused path
    REF = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                           ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint,
                           ctypes.c_void_p)
    seen = []

    def ref(wp, n, k, seg_log2, xp, yp, b, s):
        seen.append((n, k, seg_log2, b))
        w = view(wp, n * k).view(n, k).float()
        x = view(xp, b * k).view(b, k).float()
        view(yp, b * n).copy_((x @ w.T).to(torch.bfloat16).view(-1))
        return 0

    ref_c = REF(ref)
    base = torch.nn.Linear(K, N, bias=True).to(torch.bfloat16)
    with torch.no_grad():
        base.weight.copy_(W)
        base.bias.copy_(bias)
    r = tt.RefGemvLinear(base, seg_log2=11, fused_max_batch=8, name="ref")
    r._ref = ref_c
    lin._gemv = lin._gemv_async = gemv_c
    lin.set_mode("auto", 8)
    for rows in (1, 5, 8, 9, 30):
        xr = torch.randn(rows, K, generator=g).to(torch.bfloat16)
        assert torch.equal(r(xr), lin(xr))
    assert seen[0] == (N, K, 11, 1)


needs_gpu = pytest.mark.skipif(not _has_gpu(), reason="no CUDA device for libtseal")


@needs_gpu
def test_gpu_tensors_exact(env, art):
    torch = pytest.importorskip("torch")
    for name, (dt, shape, raw) in env.original.items():
        t = art.tensor(name, device="cuda:0")
        assert t.is_cuda and tuple(t.shape) == shape
        host = t.cpu()
        b = host.view(torch.int16) if host.dtype == torch.bfloat16 else host
        assert b.numpy().tobytes() == raw, name


@needs_gpu
def test_gpu_slices_concatenate(art):
    torch = pytest.importorskip("torch")
    for name in ("model.layers.0.mlp.down_proj.weight", "extra.bf16_3d"):
        full = art.tensor(name, device="cuda:0")
        for dim in (0, 1):
            parts = [art.tensor(name, device="cuda:0", rank=r, world_size=2, dim=dim)
                     for r in range(2)]
            assert torch.equal(torch.cat(parts, dim=dim).view(torch.int16), full.view(torch.int16))


@needs_gpu
def test_gpu_load_and_check(env, art):
    with art.load_gpu(0) as gm:
        assert set(gm.names()) == set(env.original)
        assert gm.report.tensors == len(env.original)
        assert gm.report.device_bytes > 0
        assert gm.check() == len(env.original)


@needs_gpu
def test_tseal_linear_paths(art):
    torch = pytest.importorskip("torch")
    import tseal.torch as tt

    name = "model.layers.0.mlp.gate_proj.weight"
    with art.load_gpu(0, names=[name]) as gm:
        lin = tt.TsealLinear(gm.tensor(name), mode="cublas")
        w = lin.decode_weight()
        g = torch.Generator(device="cuda:0").manual_seed(0)
        for rows in (1, 3, 8, 16, 17, 40):
            x = torch.randn(rows, lin.in_features, device="cuda:0", generator=g).to(torch.bfloat16)
            lin.set_mode("cublas")
            yc = lin(x)
            assert torch.equal(yc, torch.nn.functional.linear(x, w))  # bit-identical to BF16
            lin.set_mode("fused")
            yf = lin(x)
            assert torch.equal(yf, lin(x))  # deterministic
            torch.testing.assert_close(yf.float(), yc.float(), rtol=2e-2, atol=2e-2)
            x3 = x.view(1, rows, -1)
            assert tuple(lin(x3).shape) == (1, rows, lin.out_features)
            # the fused path equals tseal's reference GEMV on the plain BF16 weight, bit for bit
            plain = torch.nn.Linear(lin.in_features, lin.out_features, bias=False,
                                    device="cuda:0", dtype=torch.bfloat16)
            with torch.no_grad():
                plain.weight.copy_(w)
            ref = tt.RefGemvLinear(plain, lin.tseal_weight.seg_log2, mode="fused")
            assert torch.equal(ref(x), yf)
        del lin


@needs_gpu
def test_upload_slice_tensor_parallel(art):
    torch = pytest.importorskip("torch")
    import tseal.torch as tt

    name = "model.layers.1.mlp.up_proj.weight"
    full = art.tensor(name, device="cuda:0")
    for dim in (0, 1):
        parts = []
        for r in range(2):
            gt = art.upload_slice(name, 0, rank=r, world_size=2, dim=dim)
            lin = tt.TsealLinear(gt, mode="cublas")
            parts.append(lin.decode_weight())
        assert torch.equal(torch.cat(parts, dim).view(torch.int16), full.view(torch.int16))


@needs_gpu
def test_load_model_gpu_matches_bf16(env):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import tseal.torch as tt

    model = tt.load_model(env.art, key=env.key, trust=env.trust, device="cuda:0", mode="cublas")
    assert model.tseal_info["tseal_linear_layers"] == 15  # 7 per layer x 2 + lm_head
    assert model.tseal_info["compressed_linear_bytes"] < model.tseal_info["bf16_linear_bytes"]
    ref = _ref_model(env, "cuda:0")
    ids = torch.tensor([[1, 5, 9, 300, 17, 2, 44, 1000]], device="cuda:0")
    with torch.no_grad():
        assert torch.equal(model(ids).logits, ref(ids).logits)
        tt.set_mode(model, "auto", fused_max_batch=8)
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
        assert out.shape == (1, 16)
    # tensor parallel: each rank's slices concatenate to the full weights
    parts = [tt.load_model(env.art, key=env.key, trust=env.trust, device="cuda:0", rank=r,
                           world_size=2) for r in range(2)]
    with tseal.open(env.art, key=env.key, trust=env.trust) as a:
        for mname in ("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"):
            dim = 1 if mname.endswith("down_proj") else 0
            ws = [p.get_submodule(mname).decode_weight() for p in parts]
            assert all(p.get_submodule(mname).parallel == ("rowwise" if dim else "colwise")
                       for p in parts)
            want = a.tensor(mname + ".weight", device="cuda:0")
            assert torch.equal(torch.cat(ws, dim).view(torch.int16), want.view(torch.int16))


# ---- packaging -----------------------------------------------------------------------------

def test_pip_install_offline(tmp_path):
    """`pip install ./python` needs nothing from a package index (in-tree build backend)."""
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed for %s" % sys.executable)
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                        "--target", str(target), os.path.join(REPO, "python")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (target / "tseal" / "__init__.py").exists()
    assert (target / "tseal" / "torch.py").exists()
    code = "import tseal, sys; print(tseal.__file__); print(tseal.gpu_built() in (True, False))"
    env2 = dict(os.environ, PYTHONPATH=str(target))
    env2.setdefault("TSEAL_LIB", tseal.library_path())
    q = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env2,
                       cwd=str(tmp_path))
    assert q.returncode == 0, q.stderr
    assert q.stdout.startswith(str(target))


def test_base_package_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "sys.path.insert(0, %r)\nimport tseal\nassert 'torch' not in dir(tseal)\n"
            "try:\n    import tseal.torch\nexcept ImportError as e:\n    print('ok', e)\n"
            % os.path.join(REPO, "python"))
    q = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert q.returncode == 0, q.stderr
    assert q.stdout.startswith("ok") and "PyTorch" in q.stdout


def test_every_bound_prototype_exists_in_the_library():
    """Each C function the binding declares is exported by libtseal.so (names checked here,
    not only when a GPU path finally calls them)."""
    lib = tseal._lib()
    missing = [name for name in tseal._PROTOS if not lib.has(name)]
    assert missing == [], "libtseal.so lacks: %s" % ", ".join(missing)
