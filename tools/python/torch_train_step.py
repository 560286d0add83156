#!/usr/bin/python3
"""PyTorch side of `cpc-engine bench --torch`: the same CPC model and training step.

Loads the model `cpc-engine bench` exported (safetensors with the config in its metadata,
built by load_encoder.CPCModel, strict load) and trains it the way a PyTorch user would:
encoder -> GRU -> K nn.Linear predictors -> InfoNCE with one batched matmul per step k,
cross-entropy, backward, clip_grad_norm_, AdamW. On CUDA (--device cuda) it is configured
as PyTorch's performance guide says (cudnn.benchmark, fused AdamW, set_to_none), TF32 set
explicitly for matmuls and cuDNN (--tf32), each step timed with CUDA events. Requests
arrive one per line on stdin so the C++ side can alternate rounds with its own engine:
    check X.safetensors T  -> {"loss": ...}  loss of x at fixed t (no update)
    steps N                -> {"ms": [...]}   N timed training steps
"""
import argparse
import contextlib
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_encoder  # noqa: E402


def info_nce(cfg, z, c, predictors, t_random, lower=contextlib.nullcontext):
    """Mean over k of the mean cross-entropy of each positive, as cpc-engine's InfoNCE.

    `lower` is the autocast context of train.precision bf16: the predictors run in it,
    the scores and the loss in fp32 (as cpc-engine keeps them)."""
    loss_cfg = cfg.get("loss", {})
    if loss_cfg.get("exclude_own_sequence", False):
        raise SystemExit("torch_train_step.py: loss.exclude_own_sequence is not implemented in the PyTorch reference")
    B, T, Dz = z.shape
    K = len(predictors)
    t_mode = loss_cfg.get("t_mode", "all")
    ts = {"all": (0, T - K), "last": (T - K - 1, T - K), "random": (t_random, t_random + 1)}[t_mode]
    score = loss_cfg.get("score", "dot")
    scale = {"dot": 1.0, "scaled_dot": 1.0 / Dz, "cosine": 1.0 / loss_cfg.get("temperature", 0.1)}[score]
    over_latents = loss_cfg.get("normalize", "over_latents") == "over_latents"
    negatives = loss_cfg.get("negatives", "batch")
    per_t = negatives == "batch"
    total = 0.0
    for k in range(1, K + 1):
        with lower():
            pred = predictors[k - 1](c[:, ts[0]:ts[1]])  # (B, nt, Dz)
        pred, targ = pred.float(), z[:, ts[0] + k:ts[1] + k].float()
        if score == "cosine":
            pred, targ = F.normalize(pred, dim=2, eps=1e-8), F.normalize(targ, dim=2, eps=1e-8)
        a, cand = (pred, targ) if over_latents else (targ, pred)
        if negatives == "sequence":  # candidates: the other steps of the same sequence
            nt = a.shape[1]
            s = torch.bmm(a, cand.transpose(1, 2)) * scale  # (B, nt, nt)
            labels = torch.arange(nt, device=s.device).repeat(B)
            total = total + F.cross_entropy(s.reshape(B * nt, nt), labels)
            continue
        a, cand = a.transpose(0, 1), cand.transpose(0, 1)  # (nt, B, Dz): rows ordered (t, b)
        nt = a.shape[0]
        if per_t:  # candidates: the other sequences at the same t
            s = torch.bmm(a, cand.transpose(1, 2)) * scale  # (nt, B, B)
            labels = torch.arange(B, device=s.device).repeat(nt)
            total = total + F.cross_entropy(s.reshape(nt * B, B), labels)
        else:
            a, cand = a.reshape(nt * B, Dz), cand.reshape(nt * B, Dz)
            total = total + F.cross_entropy(a @ cand.T * scale, torch.arange(nt * B, device=a.device))
    return total / K


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tf32", default="off", choices=["on", "off"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
        torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
        torch.backends.cudnn.benchmark = True
    _, meta = load_encoder.read_safetensors(args.weights)
    cfg = json.loads(meta["config"])
    model = load_encoder.load(args.weights).to(dev).train()
    tc = cfg.get("train", {})
    opt = torch.optim.AdamW(model.parameters(), lr=tc.get("lr", 2e-4), weight_decay=tc.get("weight_decay", 0.01),
                            **({"fused": True} if cuda else {}))
    clip = tc.get("clip", 1.0)
    data = cfg.get("data", {})
    x = torch.randn(args.batch, data.get("channels", 1), data.get("window", 20480), device=dev)
    with torch.no_grad():
        T = model.encoder(x[:1]).shape[2]
    K = len(model.Wk)

    # train.precision bf16: convolutions and GEMMs under autocast (bf16 inputs, as ours).
    lower = ((lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if tc.get("precision", "fp32") == "bf16"
             else contextlib.nullcontext)

    def step():
        opt.zero_grad(set_to_none=True)
        with lower():
            z, c = model(x)
        loss = info_nce(cfg, z, c, model.Wk, int(torch.randint(0, T - K, ())), lower)  # t drawn on the host
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    with open("/proc/self/maps") as maps:  # the BLAS library actually loaded (Debian: libblas.so.3 alternative)
        blas = sorted({ln.split()[-1] for ln in maps if "blas" in ln.split()[-1].lower()})
    header = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    if cuda:
        header.update({"gpu": torch.cuda.get_device_name(dev), "cuda": torch.version.cuda,
                       "cudnn": torch.backends.cudnn.version(), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                       "tf32_cudnn": torch.backends.cudnn.allow_tf32, "cudnn_benchmark": True, "adamw": "fused",
                       "autocast": "bf16" if tc.get("precision", "fp32") == "bf16" else "off"})
    else:
        header.update({"mkldnn": torch.backends.mkldnn.is_available(), "blas": blas,
                       "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
                       "LD_PRELOAD": os.environ.get("LD_PRELOAD", ""),
                       "MALLOC_CONF": os.environ.get("MALLOC_CONF", "")})
    print(json.dumps(header), flush=True)
    for line in sys.stdin:
        req = line.split()
        if req[0] == "check":
            xs, _ = load_encoder.read_safetensors(req[1])
            with torch.no_grad():
                with lower():
                    z, c = model(xs["x"].to(dev))
                print(json.dumps({"loss": float(info_nce(cfg, z, c, model.Wk, int(req[2]), lower))}), flush=True)
        elif req[0] == "steps":
            ms = []
            if cuda:  # CUDA events around each step, read once after the last
                torch.cuda.synchronize()
                ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(int(req[1]))]
                for e0, e1 in ev:
                    e0.record()
                    step()
                    e1.record()
                torch.cuda.synchronize()
                ms = [e0.elapsed_time(e1) for e0, e1 in ev]
            else:
                for _ in range(int(req[1])):
                    t0 = time.perf_counter()
                    step()
                    ms.append((time.perf_counter() - t0) * 1e3)
            print(json.dumps({"ms": ms}), flush=True)
        else:
            raise SystemExit(f"torch_train_step.py: unknown request {line!r}")


if __name__ == "__main__":
    main()
