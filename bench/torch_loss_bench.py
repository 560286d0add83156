#!/usr/bin/python3
"""PyTorch side of bench/loss_bench.cpp: InfoNCE (seeds' per-k loop and one batched
matmul) and NT-Xent, forward + backward, with peak extra memory.

Protocol: one request per line on stdin ("infonce B" or "ntxent N"), one JSON reply.
Peak memory: the process's peak RSS (VmHWM) above its RSS before the call, after
resetting the peak through /proc/self/clear_refs (Linux >= 4.0).
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def measure(fn, reps):
    fn()  # warm-up
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = rss_kib("VmRSS")
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2], (rss_kib("VmHWM") - base) / 1024.0


def infonce_loop(pred, z):
    """Seed 004's loop: per k, the (B, B) score matrix, log-softmax, diagonal."""
    K, B, _ = pred.shape
    nce = 0.0
    for k in range(K):
        total = torch.mm(z[k], pred[k].T)
        nce = nce + torch.sum(torch.diag(torch.log_softmax(total, dim=1)))
    return nce / (-1.0 * B * K)


def infonce_batched(pred, z):
    K, B, _ = pred.shape
    scores = torch.bmm(z, pred.transpose(1, 2))  # (K, B, B)
    return F.cross_entropy(scores.reshape(K * B, B), torch.arange(B).repeat(K))


def ntxent(e, temperature=0.1):
    n = e.shape[0]
    x = F.normalize(e, dim=1)
    s = (x @ x.T / temperature).fill_diagonal_(float("-inf"))
    target = (torch.arange(n) + n // 2) % n
    return F.cross_entropy(s, target)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--K", type=int, default=12)
    ap.add_argument("--D", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = torch.__config__.show()
    blas = next((part.split("=")[1] for part in cfg.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "?")
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas}), flush=True)
    for line in sys.stdin:
        kind, size = line.split()
        size = int(size)
        out = {}
        if kind == "infonce":
            pred = torch.randn(args.K, size, args.D, requires_grad=True)
            z = torch.randn(args.K, size, args.D, requires_grad=True)
            for name, f in (("loop", infonce_loop), ("batched", infonce_batched)):
                def step():
                    pred.grad = z.grad = None
                    f(pred, z).backward()
                out[name + "_ms"], out[name + "_mib"] = measure(step, args.reps)
        else:
            e = torch.randn(size, args.D, requires_grad=True)

            def step():
                e.grad = None
                ntxent(e).backward()
            out["ntxent_ms"], out["ntxent_mib"] = measure(step, args.reps)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
