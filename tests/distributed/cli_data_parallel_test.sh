#!/usr/bin/env bash
# The real command line under mpirun (issue: data-parallel training):
#  1. 2 ranks x batch 8 with global negatives == 1 process x batch 16: the same loss at
#     every step, the same validation (shared between the ranks) and the same exported
#     weights after 3 AdamW steps; also with BatchNorm (synchronised statistics);
#  2. a 2-rank run stopped after 2 steps and resumed equals the uninterrupted one;
#  3. an error on one rank, or a rank that exits early, ends the job fast and non-zero.
# Usage: cli_data_parallel_test.sh CPC_ENGINE SOURCE_DIR
set -euo pipefail
B=$1
SRC=$2
PY=/usr/bin/python3
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
export OMP_NUM_THREADS=1

"$B" prepare synth-ecg --out "$d/ecg.h5" --n 40 --seconds 10 > /dev/null
# Channel norm and batch negatives unless a case says otherwise (BatchNorm below); the
# batch_time negatives ecg12 ships with are compared over 2 ranks in data_parallel_test.
TRAIN=(train --config "$SRC/models/configs/ecg12.json" --data "$d/ecg.h5" --steps 3 --seed 7 --threads 1
       --set loss.negatives_from=global --set encoder.norm=channel --set loss.negatives=batch)

# run_a run_b: losses per step within 1e-5 relative; exported weights: at most 1 % of
# them differ by more than 1e-7, none by more than 1e-5. For scale: one AdamW step in
# this warm-up moves a weight by up to lr = 1.5e-5, whatever the gradient's size, so a
# near-zero gradient's fp32 rounding (sums in another order) can move a weight by a
# fraction of lr. One process with 1 and with 2 threads differs that way (ecg12, 3
# steps: 0.02-0.04 % of the 1.3 M weights by more than 1e-7, the largest by 0.9-4.8e-6);
# 2 ranks x 8 against 1 x 16 measured 0.05-0.35 % (the GRU's and the convolutions' sums
# over 8 rows instead of 16). A rank that missed the other's gradients would move most
# weights by ~lr.
compare() {
  "$B" export --ckpt "$d/$1" --out "$d/$1.safetensors" --part model > /dev/null
  "$B" export --ckpt "$d/$2" --out "$d/$2.safetensors" --part model > /dev/null
  $PY - "$d" "$1" "$2" "$SRC/tools/python" <<'PYEOF'
import json, sys
d, a, b, tools = sys.argv[1:5]
sys.path.insert(0, tools)
import load_encoder
la = [json.loads(l)["loss"] for l in open(f"{d}/{a}/metrics.jsonl")]
lb = [json.loads(l)["loss"] for l in open(f"{d}/{b}/metrics.jsonl")]
assert len(la) == len(lb) == 3, (la, lb)
for s, (x, y) in enumerate(zip(la, lb)):
    assert abs(x - y) <= 1e-5 * abs(y), f"step {s + 1}: loss {x} vs {y}"
# Validation (the last step): the ranks share the batches; the numbers are one process's.
va = [json.loads(l) for l in open(f"{d}/{a}/metrics.jsonl")][-1]
vb = [json.loads(l) for l in open(f"{d}/{b}/metrics.jsonl")][-1]
assert "val_loss" in va and "val_loss" in vb, (va, vb)
assert abs(va["val_loss"] - vb["val_loss"]) <= 1e-5 * abs(vb["val_loss"]), (va["val_loss"], vb["val_loss"])
assert abs(va["val_accuracy"] - vb["val_accuracy"]) <= 1e-9, (va["val_accuracy"], vb["val_accuracy"])
wa, _ = load_encoder.read_safetensors(f"{d}/{a}.safetensors")
wb, _ = load_encoder.read_safetensors(f"{d}/{b}.safetensors")
assert wa.keys() == wb.keys()
worst = max(((wa[k] - wb[k]).abs().max().item(), k) for k in wa)
diff = [(wa[k] - wb[k]).abs().flatten() for k in wa]
over = sum(int((x > 1e-7).sum()) for x in diff)
total = sum(x.numel() for x in diff)
print(f"{a} vs {b}: losses {la} vs {lb}; largest weight difference {worst[0]:.1e} ({worst[1]}); "
      f"{over} of {total} weights differ by more than 1e-7")
assert worst[0] <= 1e-5, worst
assert over <= 1e-2 * total, (over, total)
PYEOF
}

# 1. Any world size, same run.
"${MPIRUN[@]}" "$B" "${TRAIN[@]}" --out "$d/two" --set train.batch_size=8 > "$d/two.log"
grep -q "data parallel: 2 ranks (mpirun) x batch 8 = global batch 16" "$d/two.log"
"$B" "${TRAIN[@]}" --out "$d/one" --set train.batch_size=16 > /dev/null
compare two one
"${MPIRUN[@]}" "$B" "${TRAIN[@]}" --out "$d/two_bn" --set train.batch_size=8 --set encoder.norm=batch > /dev/null
"$B" "${TRAIN[@]}" --out "$d/one_bn" --set train.batch_size=16 --set encoder.norm=batch > /dev/null
compare two_bn one_bn

# 1b. Validation shared between the ranks: 8 windows in batches of the global batch 4,
#     batch 0 on rank 0 and batch 1 on rank 1, must score as one process at batch 4.
"${MPIRUN[@]}" "$B" "${TRAIN[@]}" --out "$d/val_two" --set train.batch_size=2 > "$d/val_two.log"
grep -q "8 validation windows" "$d/val_two.log"
"$B" "${TRAIN[@]}" --out "$d/val_one" --set train.batch_size=4 > /dev/null
$PY - "$d" <<'PYEOF'
import json, sys
d = sys.argv[1]
a = [json.loads(l) for l in open(f"{d}/val_two/metrics.jsonl")][-1]
b = [json.loads(l) for l in open(f"{d}/val_one/metrics.jsonl")][-1]
print(f"validation, 2 ranks x 2 vs 1 x 4: loss {a['val_loss']} vs {b['val_loss']}")
assert abs(a["val_loss"] - b["val_loss"]) <= 1e-5 * abs(b["val_loss"]), (a, b)
assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1e-9, (a, b)
assert all(abs(x - y) <= 1e-9 for x, y in zip(a["val_accuracy_per_k"], b["val_accuracy_per_k"]))
PYEOF

# 2. Stop after 2 steps, resume: the same losses as the uninterrupted 2-rank run.
"${MPIRUN[@]}" "$B" "${TRAIN[@]}" --out "$d/resumed" --set train.batch_size=8 --stop-after 2 > /dev/null
"${MPIRUN[@]}" "$B" "${TRAIN[@]}" --out "$d/resumed" --set train.batch_size=8 --resume > /dev/null
$PY -c "
import json, sys
a = [json.loads(l)['loss'] for l in open('$d/two/metrics.jsonl')]
b = [json.loads(l)['loss'] for l in open('$d/resumed/metrics.jsonl')]
assert a == b, (a, b)
print('2-rank resume: identical losses', b)"

# 3. Failures end every rank, fast. Rank 1 reads a file that does not exist:
start=$(date +%s)
if timeout 60 "${MPIRUN[@]}" bash -c 'D='"$d"'/ecg.h5; [ "$OMPI_COMM_WORLD_RANK" = 1 ] && D='"$d"'/missing.h5;
    exec '"$B"' train --config '"$SRC"'/models/configs/ecg12.json --data "$D" --out '"$d"'/fail_$OMPI_COMM_WORLD_RANK --steps 3' \
    > "$d/fail.log" 2>&1; then
  echo "FAIL: a job with a failing rank exited 0"; cat "$d/fail.log"; exit 1
fi
grep -q "error on rank 1 of 2: .*missing.h5" "$d/fail.log" || { echo "FAIL: no rank-naming message"; cat "$d/fail.log"; exit 1; }
# Rank 1 exits before doing anything:
if timeout 60 "${MPIRUN[@]}" bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && exit 3;
    exec '"$B"' '"${TRAIN[*]}"' --out '"$d"'/early --set train.batch_size=8' > "$d/early.log" 2>&1; then
  echo "FAIL: a job whose rank exited early exited 0"; cat "$d/early.log"; exit 1
fi
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -lt 60 ] || { echo "FAIL: failing jobs took ${elapsed}s (timeout)"; exit 1; }
echo "failing ranks: both jobs ended non-zero in ${elapsed}s together"
