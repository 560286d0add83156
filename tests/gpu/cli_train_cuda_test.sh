#!/usr/bin/env bash
# `train --device cuda` through the command line against the CPU: the loader's copy
# stream, the fused optimizer and every op of a real run. 3 steps of ecg12 (window 1024,
# batch 4) from the same seed, with channel LayerNorm and with BatchNorm: losses within
# 1e-3 relative at every step (fp32 differences compound through 3 AdamW steps), the
# end-of-run validation loss too; and under train.precision=bf16 the first loss within
# 2e-2 of the CUDA fp32 run (and not equal to it). Skips (exit 77) without a CUDA device.
# Usage: cli_train_cuda_test.sh CPC_ENGINE SOURCE_DIR
set -euo pipefail
B=$1
SRC=$2
if "$B" info | grep -q "no CUDA device present"; then
  echo "skipped: no CUDA device present"
  exit 77
fi
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$B" prepare synth-ecg --out "$d/ecg.h5" --n 24 --seconds 3 > /dev/null
T=(train --config "$SRC/models/configs/ecg12.json" --data "$d/ecg.h5" --steps 3 --seed 5 --threads 2
   --set data.window=1024 --set train.batch_size=4)
for norm in channel batch; do
  "$B" "${T[@]}" --set encoder.norm=$norm --out "$d/cpu_$norm" > /dev/null
  "$B" "${T[@]}" --set encoder.norm=$norm --out "$d/cuda_$norm" --device cuda > /dev/null
done
"$B" "${T[@]}" --set encoder.norm=batch --set train.precision=bf16 --out "$d/cuda_bf16" --device cuda > /dev/null
"${CPC_PYTHON:-/usr/bin/python3}" - "$d" <<'PYEOF'
import json, sys
d = sys.argv[1]
def lines(run):
    return [json.loads(l) for l in open(f"{d}/{run}/metrics.jsonl")]
for norm in ("channel", "batch"):
    c, g = lines(f"cpu_{norm}"), lines(f"cuda_{norm}")
    assert len(c) == len(g) == 3, (c, g)
    for s, (x, y) in enumerate(zip(g, c)):
        assert abs(x["loss"] - y["loss"]) <= 1e-3 * abs(y["loss"]), f"{norm} step {s + 1}: cuda {x['loss']} vs cpu {y['loss']}"
    assert abs(g[-1]["val_loss"] - c[-1]["val_loss"]) <= 1e-3 * abs(c[-1]["val_loss"]), (g[-1], c[-1])
    print(f"{norm}: cuda {[x['loss'] for x in g]} vs cpu {[y['loss'] for y in c]}")
b, f = lines("cuda_bf16")[0]["loss"], lines("cuda_batch")[0]["loss"]
print(f"bf16 first loss {b} vs fp32 {f}")
assert abs(b - f) <= 2e-2 * abs(f) and b != f, (b, f)
PYEOF
