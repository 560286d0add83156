#!/usr/bin/python3
"""Loads weights exported by `cpc-engine export` into a PyTorch nn.Module.

    import load_encoder
    encoder = load_encoder.load("encoder.safetensors")        # nn.Sequential, strict load
    z = encoder(x)                                             # x (B, C, L) -> (B, Dz, T)

With --part model exports, load() returns CPCModel (encoder, gru, Wk) instead. The module
is built from the config stored in the file, so names and shapes match exactly
(load_state_dict(strict=True)).

Command line check (used by the tests): --check FILE.h5 reads datasets x (B, C, L) and
z (B, T, Dz) written by cpc-engine and exits non-zero unless the PyTorch encoder in eval
mode reproduces z to 1e-4 relative.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each time step of (B, C, L)."""

    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        # In the weights' precision even under bf16 autocast (as cpc-engine's norms;
        # PyTorch 1.13's CPU layer_norm refuses bf16 input with fp32 weights).
        x = x.to(self.weight.dtype).transpose(1, 2)
        return F.layer_norm(x, (x.shape[2],), self.weight, self.bias, self.eps).transpose(1, 2)


def make_norm(kind, c):
    return nn.BatchNorm1d(c) if kind == "batch" else ChannelNorm(c)


class ResidualBlock1d(nn.Module):
    def __init__(self, cin, cout, kernel, stride, norm):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(cin, cout, kernel, stride, pad, bias=False)
        self.bn1 = make_norm(norm, cout)
        self.conv2 = nn.Conv1d(cout, cout, kernel, 1, pad, bias=False)
        self.bn2 = make_norm(norm, cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, 0, bias=False), make_norm(norm, cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.downsample(x) if self.downsample is not None else x))


def build_encoder(cfg):
    channels = cfg.get("data", {}).get("channels", 1)
    e = cfg["encoder"]
    norm = e.get("norm", "batch")
    layers = []
    if e.get("type", "conv") == "conv":
        cin = channels
        for l in e["layers"]:
            layers += [nn.Conv1d(cin, l["channels"], l["kernel"], l.get("stride", 1), l.get("padding", 0), bias=False),
                       make_norm(norm, l["channels"]), nn.ReLU()]
            cin = l["channels"]
    else:
        stem = e.get("stem", {"channels": 64, "kernel": 7, "stride": 2, "padding": 3})
        layers += [nn.Conv1d(channels, stem["channels"], stem["kernel"], stem.get("stride", 1), stem.get("padding", 0),
                             bias=False), make_norm(norm, stem["channels"]), nn.ReLU()]
        cin = stem["channels"]
        for b in e["blocks"]:
            layers.append(ResidualBlock1d(cin, b["channels"], b.get("kernel", 7), b.get("stride", 1), norm))
            cin = b["channels"]
        if e.get("latent", 0) > 0:
            layers.append(nn.Conv1d(cin, e["latent"], 1))
    return nn.Sequential(*layers)


def encoder_channels(cfg):
    e = cfg["encoder"]
    if e.get("type", "conv") == "conv":
        return e["layers"][-1]["channels"]
    return e.get("latent", 0) or e["blocks"][-1]["channels"]


class CPCModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ctx = cfg.get("context", {})
        loss = cfg.get("loss", {})
        dz, dc = encoder_channels(cfg), ctx.get("hidden", 256)
        self.encoder = build_encoder(cfg)
        self.gru = nn.GRU(dz, dc, num_layers=ctx.get("layers", 1), batch_first=True)
        self.Wk = nn.ModuleList([nn.Linear(dc, dz, bias=loss.get("predictor_bias", True))
                                 for _ in range(loss.get("K", 12))])

    def forward(self, x):
        z = self.encoder(x).transpose(1, 2)
        c, _ = self.gru(z)
        return z, c


def load(path):
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    module = CPCModel(cfg) if meta.get("part") == "model" else build_encoder(cfg)
    state = module.state_dict()
    for name, t in tensors.items():  # num_batches_tracked is int64 in PyTorch
        if name in state and state[name].dtype != t.dtype:
            tensors[name] = t.to(state[name].dtype)
    module.load_state_dict(tensors, strict=True)
    return module.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--check", help="HDF5 file with x and z to reproduce")
    args = ap.parse_args()
    module = load(args.weights)
    print(f"loaded {args.weights} strictly: {type(module).__name__}, "
          f"{sum(p.numel() for p in module.parameters())} parameters")
    if args.check:
        import h5py
        with h5py.File(args.check, "r") as f:
            x, z = torch.from_numpy(f["x"][()]), f["z"][()]
        with torch.no_grad():
            ours = module(x)[0] if isinstance(module, CPCModel) else module(x).transpose(1, 2)
        err = np.abs(ours.numpy() - z).max() / max(np.abs(z).max(), 1e-30)
        print(f"PyTorch reproduces cpc-engine's z: max relative error {err:.2e}")
        sys.exit(0 if err <= 1e-4 else 1)


if __name__ == "__main__":
    main()
