#!/usr/bin/python3
"""PyTorch side of bench/core_bench.cpp: seed-004 conv stack and GRU, fwd+bwd.

Prints one JSON line per measurement round: {"conv_ms": [...], "gru_ms": [...]}.
Run by core_bench with the same thread count, as the tuned and the untuned peer (tools/cli/torch_process.h).
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn


def encoder():
    layers, cin = [], 1
    for k, s, p in [(10, 5, 3), (8, 4, 2), (4, 2, 1), (4, 2, 1), (4, 2, 1)]:
        layers += [nn.Conv1d(cin, 512, k, s, p, bias=False), nn.BatchNorm1d(512), nn.ReLU()]
        cin = 512
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=20480)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    enc = encoder()
    gru = nn.GRU(512, 256, batch_first=True)
    x = torch.randn(args.batch, 1, args.length)
    t = args.length // 160
    z = torch.randn(args.batch, t, 512, requires_grad=True)
    dz = torch.randn(args.batch, 512, t)
    dc = torch.randn(args.batch, t, 256)

    def conv_step():
        enc.zero_grad()
        (enc(x) * dz).sum().backward()

    def gru_step():
        gru.zero_grad()
        z.grad = None
        (gru(z)[0] * dc).sum().backward()

    conv_step(), gru_step()  # warm-up
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)
    for line in sys.stdin:  # one round per request line, so the C++ side can alternate
        out = {}
        for name, fn in (("conv_ms", conv_step), ("gru_ms", gru_step)):
            ts = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t0) * 1e3)
            out[name] = ts
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
