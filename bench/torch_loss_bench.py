#!/usr/bin/python3
"""PyTorch side of bench/loss_bench.cpp: InfoNCE (seeds' per-k loop and one batched
matmul) and NT-Xent, forward + backward, with peak extra memory.

Protocol: one request per line on stdin ("infonce B" or "ntxent N"), one JSON reply.
Peak extra memory: one step in a fresh process (so no freed memory is reused), its
peak RSS (VmHWM) above the RSS once the inputs exist.
"""
import argparse
import json
import subprocess
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


def median_ms(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def peak_extra_mib(args, kind, size, impl):
    """Runs one step of `impl` in a fresh interpreter and returns its peak extra MiB."""
    out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--K", str(args.K), "--D",
                          str(args.D), "--memory", kind, str(size), impl], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def make_step(kind, size, impl, K, D):
    if kind == "infonce":
        pred = torch.randn(K, size, D, requires_grad=True)
        z = torch.randn(K, size, D, requires_grad=True)
        f = infonce_loop if impl == "loop" else infonce_batched

        def step():
            pred.grad = z.grad = None
            f(pred, z).backward()
    else:
        e = torch.randn(size, D, requires_grad=True)

        def step():
            e.grad = None
            ntxent(e).backward()
    return step


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
    ap.add_argument("--memory", nargs=3, metavar=("KIND", "SIZE", "IMPL"), help="internal: one step, print MiB")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.memory:
        kind, size, impl = args.memory
        step = make_step(kind, int(size), impl, args.K, args.D)
        base = rss_kib("VmRSS")
        step()
        print((rss_kib("VmHWM") - base) / 1024.0)
        return
    cfg = torch.__config__.show()
    blas = next((part.split("=")[1] for part in cfg.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "?")
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas}), flush=True)
    for line in sys.stdin:
        kind, size = line.split()
        size = int(size)
        out = {}
        for impl in (("loop", "batched") if kind == "infonce" else ("ntxent",)):
            out[impl + "_ms"] = median_ms(make_step(kind, size, impl, args.K, args.D), args.reps)
            out[impl + "_mib"] = peak_extra_mib(args, kind, size, impl)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
