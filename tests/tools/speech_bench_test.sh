#!/usr/bin/env bash
# The speech benchmark end to end, in miniature: espeak-ng corpus (10 speakers x 4
# languages x 3 utterances), `prepare wav` with a header manifest (three labels), 2
# training steps, embeddings, the MFCC baseline and the three probes (the cross-voice
# one with --train-where/--test-where). Checks the labels and the results table.
# Usage: speech_bench_test.sh CPC_ENGINE
set -euo pipefail
B=$(realpath "$1")
cd "$(dirname "$0")/../.."
OUT=$(mktemp -d /tmp/cpc_speech_bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
OUT=$OUT B=$B PER_CELL=3 STEPS=2 WINDOWS=1 THREADS=2 CONFIGS=audio_cpc_content \
  bash tools/scripts/speech_bench.sh > "$OUT/log.txt" 2>&1 || { cat "$OUT/log.txt"; exit 1; }
/usr/bin/python3 - "$OUT" <<'PY'
import sys, h5py
out = sys.argv[1]
with h5py.File(f"{out}/speech.h5") as f:
    labels = f.attrs["labels"]
    labels = labels.decode() if isinstance(labels, bytes) else labels
    assert labels == "speaker,language,voice_group", labels
    assert len(f["offsets"]) == 121, len(f["offsets"])
    assert sorted(set(f["language"][:])) == [0, 1, 2, 3]
    assert sorted(set(f["speaker"][:])) == list(range(10))
    held_out = sorted(set(f["speaker"][f["voice_group"][:] == 1]))
    assert len(held_out) == 4, held_out
    assert int((f["split"][:] == 1).sum()) == 40  # round(0.2 x 3) = 1 test utterance per cell
with h5py.File(f"{out}/mfcc_test.h5") as f:
    assert f["mfcc"].shape == (40, 26), f["mfcc"].shape
rows = [l for l in open(f"{out}/results.md") if l.startswith("| ") and not l.startswith("| features")]
assert len(rows) == 5, rows
for r in rows:
    cells = [c.strip() for c in r.strip().strip("|").split("|")]
    for v in cells[1:]:
        assert 0.0 <= float(v) <= 1.0, r
print("speech bench smoke: ok;", len(rows), "rows")
PY
