#!/usr/bin/env python3
"""e2e_serve.py - the end-to-end proof on a GPU: serve a transformers model from a .tseal
artifact and compare it with the BF16 model.

For each model (a ~1B-parameter Llama built by transformers from a config with a fixed seed and
realistic per-layer weight scales, and/or a real model folder given with --model):

  1. save it with save_pretrained (BF16), pack the folder with the tseal CLI (signed, encrypted);
  2. load the BF16 baseline with transformers.from_pretrained, and the tseal model with
     tseal.torch.load_model from the artifact alone (config.json carried inside);
  3. measure the fused-GEMV / decode+cuBLAS crossover (or take --threshold);
  4. generate --tokens tokens greedily at each batch size in three modes: BF16 baseline, tseal
     fused (GEMV up to the threshold, decode+cuBLAS above: prefill), tseal decode+cuBLAS;
  5. print GPU memory for weights (BF16 vs tseal), tokens/s per mode, the max abs difference of
     the logits (teacher-forced on the baseline's tokens, so every step sees the same input) and
     the token mismatches of free-running generation vs the baseline.

The decode+cuBLAS path must match BF16 exactly (same bits into the same cuBLAS call): the script
exits 1 if it does not. The fused path accumulates in FP32 in its own (deterministic) order, so
it differs from cuBLAS by rounding; the script checks that it is bitwise reproducible.

Usage (from the repository root, after `make`):
  python3 bench/e2e_serve.py                       # the synthetic ~1B Llama
  python3 bench/e2e_serve.py --model DIR           # also a real causal LM folder (local files)
  python3 bench/e2e_serve.py --no-synthetic --model DIR --batches 1,8 --tokens 128
Exit codes: 0 ok, 1 a check failed, 2 usage, 5 no CUDA device or torch/transformers missing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))

EXIT_NO_GPU = 5

# The synthetic model: Llama-architecture, ~1.1B parameters (untied LM head so it is compressed
# too). Per-layer weight scales modelled on trained Llama checkpoints: q/k larger in early
# layers, v/o and down growing with depth, norms well below 1 in the blocks.
LLAMA_1B = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    vocab_size=32000,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
)


def log(*a):
    print(*a, flush=True)


def die(code, msg):
    print("e2e_serve: " + msg, file=sys.stderr, flush=True)
    sys.exit(code)


def gib(b):
    return b / (1 << 30)


# ---- models ----------------------------------------------------------------------------------

def sigma_for(name, layer, n_layers):
    f = layer / max(1, n_layers - 1)
    if "embed_tokens" in name:
        return 0.02
    if "lm_head" in name:
        return 0.025
    if "q_proj" in name or "k_proj" in name:
        return 0.035 * (1.3 - 0.5 * f)
    if "v_proj" in name:
        return 0.010 * (0.8 + 0.6 * f)
    if "o_proj" in name:
        return 0.012 * (0.8 + 0.6 * f)
    if "gate_proj" in name:
        return 0.022 * (1.0 + 0.2 * f)
    if "up_proj" in name:
        return 0.018 * (1.0 + 0.2 * f)
    if "down_proj" in name:
        return 0.016 * (0.8 + 0.5 * f)
    return 0.02


def build_synthetic(torch, transformers, out_dir, seed, dev, shape):
    """Write a ~1B Llama with seeded weights to out_dir (save_pretrained, BF16)."""
    stamp = os.path.join(out_dir, ".e2e-seed")
    tag = "%d %s" % (seed, json.dumps(shape, sort_keys=True))
    if os.path.exists(stamp) and open(stamp).read().strip() == tag:
        log("synthetic model: reusing %s" % out_dir)
        return
    shutil.rmtree(out_dir, ignore_errors=True)
    t0 = time.perf_counter()
    config = transformers.LlamaConfig(**shape)
    with torch.device(dev):
        model = transformers.LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    g = torch.Generator(device=dev).manual_seed(seed)
    L = config.num_hidden_layers
    with torch.no_grad():
        for name, p in model.named_parameters():
            layer = int(name.split(".")[2]) if ".layers." in name else 0
            if p.dim() == 1:  # RMSNorm weights
                if name.startswith("model.norm"):
                    base = 1.8
                elif "input_layernorm" in name:
                    base = 0.25 + 0.35 * layer / max(1, L - 1)
                else:
                    base = 0.35 + 0.25 * layer / max(1, L - 1)
                v = base + 0.08 * torch.randn(p.shape, generator=g, device=dev)
                p.copy_(v.abs().to(p.dtype))
            else:
                s = sigma_for(name, layer, L)
                v = torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32) * s
                p.copy_(v.to(p.dtype))
    n = sum(p.numel() for p in model.parameters())
    model.generation_config.do_sample = False
    model.save_pretrained(out_dir)
    del model
    if dev != "cpu":
        torch.cuda.empty_cache()
    with open(stamp, "w") as f:
        f.write(tag)
    log("synthetic model: %.3f B parameters written to %s in %.1f s"
        % (n / 1e9, out_dir, time.perf_counter() - t0))


def prepare_real(torch, transformers, src, out_dir):
    """A BF16 copy of a real causal LM written by save_pretrained (what tseal pack takes)."""
    if os.path.exists(os.path.join(out_dir, "config.json")):
        log("real model: reusing %s" % out_dir)
        return
    t0 = time.perf_counter()
    try:
        m = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16,
                                                              local_files_only=True)
    except Exception as e:
        die(2, "--model %s: not a causal LM folder transformers can load offline: %s" % (src, e))
    m.save_pretrained(out_dir)
    for fn in os.listdir(src):  # tokenizer files travel inside the artifact too
        if fn.startswith("tokenizer") or fn in ("special_tokens_map.json", "vocab.json",
                                                "merges.txt"):
            shutil.copy(os.path.join(src, fn), out_dir)
    del m
    log("real model: BF16 copy of %s in %s (%.1f s)" % (src, out_dir, time.perf_counter() - t0))


def tseal_cli(args):
    t = args.tseal or os.environ.get("TSEAL_BIN") or os.path.join(REPO, "build", "tseal")
    if not os.access(t, os.X_OK):
        die(2, "the tseal CLI is not at %s (run make, or pass --tseal)" % t)
    return t


def run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode:
        die(1, "%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def pack(args, folder, artifact, model_id):
    T = tseal_cli(args)
    keys = os.path.join(args.work, "keys")
    os.makedirs(keys, exist_ok=True)
    if not os.path.exists(os.path.join(keys, "vendor.sign.key")):
        run([T, "keygen", "--sign", "vendor", "-q"], cwd=keys)
        run([T, "keygen", "--recipient", "server", "-q"], cwd=keys)
    t0 = time.perf_counter()
    if os.path.exists(artifact):
        os.remove(artifact)
    run([T, "pack", folder, "-o", artifact, "--sign-key", os.path.join(keys, "vendor.sign.key"),
         "-r", os.path.join(keys, "server.pub"), "--model-id", model_id, "--version", "1", "-q"])
    dt = time.perf_counter() - t0
    folder_bytes = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
                       if os.path.isfile(os.path.join(folder, f)))
    log("packed %s: %.2f GiB of model files -> %.2f GiB artifact (%.1f%%) in %.1f s"
        % (artifact, gib(folder_bytes), gib(os.path.getsize(artifact)),
           100.0 * os.path.getsize(artifact) / folder_bytes, dt))
    return os.path.join(keys, "server.key"), os.path.join(keys, "vendor.sign.pub")


# ---- generation ------------------------------------------------------------------------------

def greedy(torch, model, ids, n, force=None):
    """Greedy decoding with the KV cache. Returns (predicted tokens b x n, logits b x n x V).
    With `force` (b x n tokens), step i is fed force[:, i-1] instead of its own prediction
    (teacher forcing: every model sees the same inputs)."""
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        past = out.past_key_values
        step = out.logits[:, -1, :]
        toks, logits = [], []
        for i in range(n):
            pred = step.argmax(-1)
            toks.append(pred)
            logits.append(step)
            if i == n - 1:
                break
            nxt = pred if force is None else force[:, i]
            out = model(input_ids=nxt[:, None], past_key_values=past, use_cache=True)
            past = out.past_key_values
            step = out.logits[:, -1, :]
        return torch.stack(toks, 1), torch.stack(logits, 1)


def sync(torch):
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_greedy(torch, model, ids, n):
    greedy(torch, model, ids[:, :8], 4)  # warm-up (kernels, cuBLAS heuristics, allocator)
    sync(torch)
    t0 = time.perf_counter()
    toks, logits = greedy(torch, model, ids, n)
    sync(torch)
    return toks, logits, time.perf_counter() - t0


def gpu_free(torch):
    if not torch.cuda.is_available():
        return 0
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return torch.cuda.mem_get_info()[0]


def tseal_has_gemv():
    import tseal

    return tseal._lib().has("tseal_gpu_gemv")


def has_ref_gemv():
    import tseal

    return tseal._lib().has("tseal_gpu_gemv_ref")


# ---- one model -------------------------------------------------------------------------------

def serve_one(args, torch, transformers, tt, label, folder, artifact):
    res = {"model": label}
    key, trust = pack(args, folder, artifact, "e2e/" + label)
    dev = torch.device(args.device)

    # tseal model first, so its memory is measured on a clean device
    free0 = gpu_free(torch)
    t0 = time.perf_counter()
    model = tt.load_model(artifact, key=key, trust=trust, device=args.device, mode="auto",
                          fused_max_batch=8)
    load_s = time.perf_counter() - t0
    tseal_measured = free0 - gpu_free(torch)
    info = model.tseal_info
    rep = info.get("load_report")
    log("tseal load: %.1f s (gpu_load %.1f s: read %.1f, decrypt %.1f, copy wait %.1f s), %d"
        " TsealLinear layers" % (load_s, rep.seconds if rep else 0, rep.read_seconds if rep else 0,
                                 rep.decrypt_seconds if rep else 0,
                                 rep.copy_wait_seconds if rep else 0, info["tseal_linear_layers"]))

    free1 = gpu_free(torch)
    base = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to(dev)
    base.eval()
    bf16_measured = free1 - gpu_free(torch)
    bf16_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
    n_params = sum(p.numel() for p in base.parameters())
    res.update(params=n_params, bf16_weight_bytes=bf16_bytes, bf16_measured_bytes=bf16_measured,
               tseal_weight_bytes=info["total_bytes"], tseal_measured_bytes=tseal_measured,
               tseal_compressed_linear_bytes=info["compressed_linear_bytes"],
               tseal_other_bytes=info["other_bytes"], load_seconds=load_s)
    log("")
    log("== %s: %.3f B parameters" % (label, n_params / 1e9))
    log("GPU memory for weights: BF16 %.3f GiB (measured %.3f) | tseal %.3f GiB (measured %.3f):"
        " compressed linears %.3f GiB (BF16 %.3f) + other params %.3f GiB -> %.1f%% of BF16"
        % (gib(bf16_bytes), gib(bf16_measured), gib(info["total_bytes"]), gib(tseal_measured),
           gib(info["compressed_linear_bytes"]), gib(info["bf16_linear_bytes"]),
           gib(info["other_bytes"]), 100.0 * info["total_bytes"] / bf16_bytes))

    if args.threshold == "auto":
        if not info["tseal_linear_layers"]:
            thr, rows = 0, []
        elif not tseal_has_gemv():
            thr, rows = 0, []
            log("fused GEMV: not in this libtseal build; the 'fused' mode falls back to cuBLAS")
        else:
            thr, rows = tt.measure_threshold(model, iters=args.threshold_iters)
            log("fused/cuBLAS crossover, one layer of each shape summed (ms):")
            for r in rows:
                log("  rows %2d  fused %.3f  decode+cuBLAS %.3f" % (r["rows"], r["fused_ms"],
                                                                    r["cublas_ms"]))
        res["threshold_rows"] = rows
    else:
        thr = int(args.threshold)
    res["threshold"] = thr
    log("fused_max_batch = %d (TsealLinear uses the fused GEMV up to %d rows)" % (thr, thr))

    vocab = base.config.vocab_size
    g = torch.Generator(device="cpu").manual_seed(args.seed + 1)
    ok = True
    res["runs"] = []
    log("")
    log("%5s  %-22s %10s %14s %18s %18s %14s" % ("batch", "mode", "tokens/s", "max|dlogits|",
                                                "token mismatches", "(teacher-forced)",
                                                "vs ref GEMV"))
    for b in args.batches:
        ids = torch.randint(3, vocab, (b, args.prompt_len), generator=g).to(dev)
        ref_toks, ref_logits, t = timed_greedy(torch, base, ids, args.tokens)
        row = {"batch": b, "mode": "bf16", "tokens_per_s": b * args.tokens / t}
        res["runs"].append(row)
        log("%5d  %-22s %10.1f %14s %18s %18s" % (b, "BF16 (transformers)", row["tokens_per_s"],
                                                 "-", "-", "-"))
        for mode, label_m in (("auto", "tseal fused (<=%d rows)" % thr),
                              ("cublas", "tseal decode+cuBLAS")):
            tt.set_mode(model, mode, fused_max_batch=thr)
            toks, _, t = timed_greedy(torch, model, ids, args.tokens)
            mism = int((toks != ref_toks).sum())
            ftoks, flogits = greedy(torch, model, ids, args.tokens, force=ref_toks)
            diff = float((flogits.float() - ref_logits.float()).abs().max())
            fmism = int((ftoks != ref_toks).sum())
            row = {"batch": b, "mode": "tseal-" + ("fused" if mode == "auto" else "cublas"),
                   "tokens_per_s": b * args.tokens / t, "max_abs_logit_diff": diff,
                   "token_mismatches": mism, "forced_token_mismatches": fmism}
            if mode == "auto":
                _, again = greedy(torch, model, ids, args.tokens, force=ref_toks)
                row["reproducible"] = bool(torch.equal(again, flogits))
                del again
                if not row["reproducible"]:
                    ok = False
                    log("FAIL: the fused path is not bitwise reproducible")
                if has_ref_gemv() and info["tseal_linear_layers"]:
                    # the BF16 model with tseal's reference GEMV (same reduction order) where
                    # the tseal model runs the fused kernel: must give the same bits
                    restore = tt.use_reference_gemv(base, model)
                    try:
                        rtoks, rlogits = greedy(torch, base, ids, args.tokens, force=ref_toks)
                    finally:
                        restore()
                    row["ref_gemv_max_abs_logit_diff"] = float(
                        (flogits.float() - rlogits.float()).abs().max())
                    row["ref_gemv_exact"] = (row["ref_gemv_max_abs_logit_diff"] == 0.0 and
                                             bool(torch.equal(rtoks, ftoks)))
                    if not row["ref_gemv_exact"]:
                        ok = False
                    del rlogits
                row["exact"] = diff == 0.0 and mism == 0
                if not row["exact"]:
                    ok = False
            res["runs"].append(row)
            log("%5d  %-22s %10.1f %14.3g %18s %18s %14s" % (
                b, label_m, row["tokens_per_s"], diff, "%d / %d" % (mism, toks.numel()),
                "%d / %d" % (fmism, ftoks.numel()),
                "%.3g" % row["ref_gemv_max_abs_logit_diff"]
                if "ref_gemv_max_abs_logit_diff" in row else "-"))
            del flogits
        del ref_logits
        gpu_free(torch)
    exact = all(r.get("exact", True) for r in res["runs"])
    log("decode+cuBLAS vs BF16: %s" % ("bit-identical logits and tokens" if exact else
                                        "FAIL: differs"))
    fused = [r for r in res["runs"] if r["mode"] == "tseal-fused"]
    if fused:
        log("fused vs BF16 (cuBLAS): max |dlogits| %.3g (FP32 accumulation in the fused kernel's"
            " order vs cuBLAS's); reproducible: %s" % (max(r["max_abs_logit_diff"] for r in fused),
                                                       all(r.get("reproducible") for r in fused)))
        refs = [r for r in fused if "ref_gemv_exact" in r]
        if refs:
            log("fused vs BF16 with the reference GEMV (same reduction order): %s" % (
                "bit-identical logits and tokens" if all(r["ref_gemv_exact"] for r in refs)
                else "FAIL: differs"))
        else:
            log("fused vs the reference GEMV: not checked (libtseal has no tseal_gpu_gemv_ref,"
                " or no TsealLinear layer)")
    res["ok"] = ok
    del model, base
    gpu_free(torch)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a real causal LM folder (transformers, local files)")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic 1B model")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--threshold", default="auto", help="fused_max_batch, or 'auto' (measure)")
    ap.add_argument("--threshold-iters", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=os.path.join(REPO, "build", "e2e"))
    ap.add_argument("--tseal", help="the tseal CLI (default $TSEAL_BIN or build/tseal)")
    ap.add_argument("--json-out", help="write the results as JSON here")
    ap.add_argument("--cpu-check", action="store_true",
                    help="developer check of this script without a GPU: a tiny synthetic model,"
                         " every weight decoded on the host (no TsealLinear), 8 tokens")
    args = ap.parse_args()
    args.device = "cpu" if args.cpu_check else "cuda:0"
    shape = LLAMA_1B
    if args.cpu_check:
        shape = dict(LLAMA_1B, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=512)
        args.tokens = min(args.tokens, 8)
    try:
        args.batches = [int(x) for x in args.batches.split(",") if x]
    except ValueError:
        die(2, "--batches: comma-separated integers")
    if args.no_synthetic and not args.model:
        die(2, "--no-synthetic needs --model DIR")

    try:
        import torch
        import transformers
    except ImportError as e:
        die(EXIT_NO_GPU, "needs PyTorch and transformers (%s); nothing was run" % e)
    if not args.cpu_check and not torch.cuda.is_available():
        die(EXIT_NO_GPU, "no CUDA device visible to PyTorch; this benchmark runs on a GPU only")
    import tseal
    try:
        n = tseal.gpu_device_count()
    except tseal.TsealError as e:
        die(EXIT_NO_GPU, "libtseal: %s" % e)
    if n == 0 and not args.cpu_check:
        die(EXIT_NO_GPU, "libtseal (%s) sees no CUDA device: %s (built with CUDA: %s)"
            % (tseal.library_path(), tseal._lib().tseal_errmsg().decode(), tseal.gpu_built()))
    import tseal.torch as tt

    os.makedirs(args.work, exist_ok=True)
    log("e2e_serve: %s, torch %s, transformers %s, libtseal %s"
        % (torch.cuda.get_device_name(0) if not args.cpu_check else "CPU check",
           torch.__version__, transformers.__version__, tseal.library_path()))
    results = []
    if not args.no_synthetic:
        folder = os.path.join(args.work, "llama-1b")
        build_synthetic(torch, transformers, folder, args.seed, args.device, shape)
        results.append(serve_one(args, torch, transformers, tt, "llama-1b-synthetic", folder,
                                 os.path.join(args.work, "llama-1b.tseal")))
    if args.model:
        folder = os.path.join(args.work, "real-bf16")
        prepare_real(torch, transformers, args.model, folder)
        results.append(serve_one(args, torch, transformers, tt,
                                 os.path.basename(os.path.normpath(args.model)), folder,
                                 os.path.join(args.work, "real.tseal")))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    ok = all(r["ok"] for r in results)
    log("\ne2e_serve: %s" % ("all checks passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
