#!/usr/bin/env bash
# The default demo, one command: installs what is missing, builds, generates a
# synthetic 12-lead ECG set, trains the ecg12 CPC model on the CPU with a progress
# line, exports the encoder for PyTorch, embeds train/test windows and probes the
# rhythm class, printed next to the same probe on the untrained (random-init) encoder.
# Settings: STEPS (default 300), N recordings (500), OUT directory (demo), THREADS.
# An existing run in OUT is resumed, never overwritten.
#
# The demo trains models/configs/ecg12.json as it is shipped (README, Quick start, says
# why its norm and negatives are what they are).
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-300}
N=${N:-500}
OUT=${OUT:-demo}
THREADS=${THREADS:-$(nproc)}

bash tools/scripts/install_deps.sh
CUDA_ARGS=(-DCPC_CUDA=OFF)  # the demo runs on the CPU; .ci/run builds the CUDA backend too
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 "${CUDA_ARGS[@]}" > /dev/null
cmake --build build -j"$(nproc)" --target cpc-engine
B=build/tools/cpc-engine
mkdir -p "$OUT"

[ -f "$OUT/ecg.h5" ] || "$B" prepare synth-ecg --out "$OUT/ecg.h5" --n "$N"
RESUME=(--resume auto)  # continues an existing run
"$B" train --config models/configs/ecg12.json --data "$OUT/ecg.h5" --out "$OUT/run" --steps "$STEPS" \
  --threads "$THREADS" "${RESUME[@]}"
"$B" export --ckpt "$OUT/run" --out "$OUT/encoder.safetensors"
for split in train test; do
  "$B" embed --ckpt "$OUT/run" --data "$OUT/ecg.h5" --out "$OUT/emb_$split.h5" --split "$split"
  "$B" embed --ckpt "$OUT/run" --data "$OUT/ecg.h5" --out "$OUT/random_$split.h5" --split "$split" --random-init
done
echo
echo "rhythm probe (5 classes; chance 0.20), test accuracy:"
for feature in c_mean z_mean context; do
  trained=$("$B" probe --train "$OUT/emb_train.h5" --test "$OUT/emb_test.h5" --label rhythm --feature "$feature" \
    --json "$OUT/probe_$feature.json" | head -1 | awk '{print $NF}')
  random=$("$B" probe --train "$OUT/random_train.h5" --test "$OUT/random_test.h5" --label rhythm \
    --feature "$feature" | head -1 | awk '{print $NF}')
  printf "  %-8s  CPC-trained %s   random-init %s\n" "$feature" "$trained" "$random"
done
"$B" report "$OUT/run" --probe "$OUT/probe_c_mean.json" --probe "$OUT/probe_z_mean.json" \
  --probe "$OUT/probe_context.json" > /dev/null
echo
echo "training report (open in a browser): $OUT/run/report.html"
