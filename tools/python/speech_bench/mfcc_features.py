#!/usr/bin/python3
"""MFCC baseline features for the windows of a `cpc-engine embed` file.

Reads the windows the embedding file lists (datasets recording and start) from the
data file, computes 13 MFCCs per 25 ms frame (10 ms hop, 40 mel bands, Hamming
window, log energies, DCT-II) and writes their mean and standard deviation over the
window as dataset `mfcc` (N, 26), with the embedding file's labels copied, so
`cpc-engine probe --feature mfcc` fits the same probe on the same windows.
"""
import argparse
import sys

import h5py
import numpy as np


def mel_filterbank(n_mels: int, n_fft: int, rate: float) -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    fb = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0.0, None)
    return fb


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)


def mfcc(x: np.ndarray, rate: float, fb: np.ndarray, dct: np.ndarray, n_fft: int) -> np.ndarray:
    frame, hop = int(round(0.025 * rate)), int(round(0.010 * rate))
    n = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx] * np.hamming(frame)[None, :]
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    logmel = np.log(power @ fb.T + 1e-10)
    return logmel @ dct.T  # (frames, 13)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the data file the embedding was made from")
    ap.add_argument("--emb", required=True, help="a cpc-engine embed output (recording, start, labels)")
    ap.add_argument("--window", type=int, required=True, help="window length in samples (the config's data.window)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with h5py.File(a.data, "r") as d, h5py.File(a.emb, "r") as e:
        rate = float(d.attrs["rate_hz"].decode() if isinstance(d.attrs["rate_hz"], bytes) else d.attrs["rate_hz"])
        signals, offsets = d["signals"], d["offsets"][:]
        if signals.ndim != 1:
            sys.exit(f"{a.data}: expected a mono signal (total,), found {signals.shape}")
        rec, start = e["recording"][:], e["start"][:]
        names = e.attrs["labels"]
        names = names.decode() if isinstance(names, bytes) else str(names)
        labels = [s for s in names.split(",") if s]
        n_fft = 1 << int(np.ceil(np.log2(0.025 * rate)))
        fb, dct = mel_filterbank(40, n_fft, rate), dct_matrix(13, 40)
        feats = np.empty((len(rec), 26), dtype=np.float32)
        for i, (r, s) in enumerate(zip(rec, start)):
            b = int(offsets[r]) + int(s)
            m = mfcc(signals[b : b + a.window].astype(np.float64), rate, fb, dct, n_fft)
            feats[i, :13], feats[i, 13:] = m.mean(axis=0), m.std(axis=0)
        with h5py.File(a.out + ".tmp", "w") as o:
            o["mfcc"] = feats
            for name in labels + ["recording", "start"]:
                o[name] = e[name][:]
            o.attrs["labels"] = ",".join(labels)
    import os

    os.replace(a.out + ".tmp", a.out)
    print(f"wrote {a.out}: {len(rec)} windows, mfcc (26: mean and std of 13 MFCCs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
