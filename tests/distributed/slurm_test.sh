#!/usr/bin/env bash
# A real one-node SLURM (tests/distributed/slurm_cluster.sh) running cpc-engine:
#   1. `srun -n 2 --mpi=pmix train` gives the same losses and weights as
#      `mpirun -np 2` (bit for bit) and as one process at the global batch (losses 1e-5,
#      weights as compare_runs says);
#   2. tools/slurm/train_cpu.sbatch (the README's job script) submitted with
#      `sbatch --wait` finishes and its output says so;
#   3. the same job stopped by `scancel --signal=TERM` checkpoints, exits 75, requeues
#      itself and continues with `--resume auto` to the end: its metrics.jsonl equals an
#      uninterrupted run's record for record, and its weights bit for bit.
# Usage: slurm_test.sh CPC_ENGINE SOURCE_DIR. Needs root (the daemons) and slurm-wlm.
set -uo pipefail
B=$(readlink -f "$1")
SRC=$(readlink -f "$2")
PY=/usr/bin/python3
if [ "$(id -u)" -ne 0 ] || ! command -v slurmctld > /dev/null; then
  echo "slurm_test: needs root and slurm-wlm (tools/scripts/install_deps.sh)" >&2
  exit 1
fi
d=$(mktemp -d /tmp/cpc_slurm.XXXXXX)
source "$SRC/tests/distributed/slurm_cluster.sh"
trap 'slurm_stop; rm -rf "$d"' EXIT
slurm_start "$d/cluster" || exit 1
cd "$d"
fails=0
# compare_runs RUN_A RUN_B LOSS_TOL WEIGHT_TOL: the same metrics records (losses within
# LOSS_TOL relative, the rest equal; 0: bit for bit) and every checkpoint tensor within
# WEIGHT_TOL (0: bit for bit); with WEIGHT_TOL > 0 also at most 1 % of the weights more
# than WEIGHT_TOL / 100 apart (cli_data_parallel_test.sh says why AdamW's first steps
# spread fp32 rounding that way).
compare_runs() {
  "$PY" - "$@" <<'PYEOF'
import json, sys, h5py, numpy as np
a, b, loss_tol, weight_tol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def rec(run):
    out = []
    for line in open(f"{run}/metrics.jsonl"):
        j = json.loads(line)
        for k in ("samples_per_s", "comm_ms"): j.pop(k, None)
        out.append(j)
    return out
ra, rb = rec(a), rec(b)
assert len(ra) == len(rb), (a, b, len(ra), len(rb))
for x, y in zip(ra, rb):
    if loss_tol == 0:
        assert x == y, (x, y)
    else:
        assert abs(x["loss"] - y["loss"]) <= loss_tol * abs(y["loss"]), (x["loss"], y["loss"])
fa, fb = h5py.File(f"{a}/checkpoint.h5", "r"), h5py.File(f"{b}/checkpoint.h5", "r")
names = []
fa.visit(lambda n: names.append(n) if isinstance(fa[n], h5py.Dataset) and (weight_tol == 0 or n.startswith("model/")) else None)
over = total = 0
for n in names:
    diff = np.abs(fa[n][()] - fb[n][()])
    d = diff.max() if fa[n].size else 0.0
    assert d <= weight_tol, (n, d)
    over, total = over + int((diff > weight_tol / 100).sum()), total + diff.size
assert weight_tol == 0 or over <= 1e-2 * total, (over, total)
print(f"{a} vs {b}: {len(ra)} records, {len(names)} tensors")
PYEOF
}
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
"$B" prepare synth-ecg --out ecg.h5 --n 48 --seconds 10 > /dev/null
# As tests/distributed/cli_data_parallel_test.sh (whose 2 x 8 == 1 x 16 bounds these are).
CFG=(--config "$SRC/models/configs/ecg12.json" --data ecg.h5 --threads 1 --seed 7 --set loss.negatives_from=global)

# ---------------------------------------------------------------- 1. srun = mpirun = one process
srun -n 2 --mpi=pmix "$B" train "${CFG[@]}" --out srun2 --steps 3 --set train.batch_size=8 > srun2.log 2>&1 ||
  { bad "srun -n 2 train failed: $(tail -n 3 srun2.log)"; }
grep -q "launcher: srun\|2 ranks (srun)" srun2.log && ok "srun launched 2 ranks" || bad "srun2.log does not show 2 srun ranks"
mpirun --allow-run-as-root --oversubscribe -np 2 "$B" train "${CFG[@]}" --out mpi2 --steps 3 --set train.batch_size=8 > mpi2.log 2>&1 ||
  bad "mpirun -np 2 train failed: $(tail -n 3 mpi2.log)"
"$B" train "${CFG[@]}" --out one16 --steps 3 --set train.batch_size=16 > one16.log 2>&1 || bad "1 x 16 train failed"
compare_runs srun2 mpi2 0 0 && compare_runs srun2 one16 1e-5 1e-5 &&
  ok "srun 2 x 8 == mpirun 2 x 8 (bit for bit) == 1 x 16 (losses 1e-5, weights 1e-5, 99 % within 1e-7)" || bad "srun / mpirun / one process differ"

# ---------------------------------------------------------------- 2. the README's batch script
job=(--export=ALL,CPC_ENGINE="$B" -o job_%j.out "$SRC/tools/slurm/train_cpu.sbatch"
     "$SRC/models/configs/ecg12.json" ecg.h5)
TR=(--set data.window=1024 --set encoder.norm=batch --set train.batch_size=4 --set train.warmup=2
    --set train.checkpoint_every=1000 --set train.validate_every=1000)
if sbatch --wait "${job[@]}" run_batch --steps 5 "${TR[@]}" > submit.log 2>&1; then
  out=$(cat job_*.out)
  grep -q "done at step 5" <<<"$out" && grep -q "2 ranks x 1 threads" <<<"$out" &&
    [ "$(wc -l < run_batch/metrics.jsonl)" -eq 5 ] && ok "sbatch --wait train_cpu.sbatch: done at step 5" ||
    bad "sbatch job output: $(tail -n 5 <<<"$out")"
else
  bad "sbatch --wait failed: $(cat submit.log job_*.out 2> /dev/null | tail -n 8)"
fi
rm -f job_*.out

# ---------------------------------------------------------------- 3. preempted (SIGTERM), requeued, resumed
N=400
# The reference: the same 2 ranks, uninterrupted.
srun -n 2 --mpi=pmix "$B" train --config "$SRC/models/configs/ecg12.json" --data ecg.h5 --out ref --steps $N \
  --threads 1 "${TR[@]}" > ref.log 2>&1 || bad "the uninterrupted srun run failed: $(tail -n 3 ref.log)"
id=$(sbatch --parsable "${job[@]}" run_pre --steps $N "${TR[@]}")
for _ in $(seq 600); do  # until it has trained a few steps
  [ -f run_pre/metrics.jsonl ] && [ "$(wc -l < run_pre/metrics.jsonl)" -ge 20 ] && break
  sleep 0.1
done
scancel --signal=TERM "$id"
state=""
released=0
for _ in $(seq 900); do  # stopped, requeued, restarted, finished
  info=$(scontrol show job "$id" 2> /dev/null)
  state=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2)
  [ "$state" = COMPLETED ] || [ "$state" = FAILED ] || [ "$state" = CANCELLED ] && break
  # A requeued job waits about two minutes before it may start again; a test need not.
  if [ $released = 0 ] && [ "$state" = PENDING ] && grep -q 'Restarts=[1-9]' <<<"$info"; then
    scontrol update JobId="$id" StartTime=now && released=1
  fi
  sleep 0.2
done
out=$(cat job_"$id".out 2> /dev/null)
if [ "$state" = COMPLETED ] && grep -q "stopped by SIGTERM at step" <<<"$out" && grep -q "requeueing job $id" <<<"$out" &&
   grep -q -- "--resume auto: continuing" <<<"$out" && grep -q "done at step $N" <<<"$out"; then
  ok "scancel --signal=TERM: $(grep -o 'stopped by SIGTERM at step [0-9]*' <<<"$out"), requeued, resumed, done at step $N"
else
  bad "preemption: job state '$state'; output: $(tail -n 12 <<<"$out")"
fi
compare_runs ref run_pre 0 0 && ok "the preempted and resumed job equals the uninterrupted run (metrics and weights, bit for bit)" ||
  bad "the resumed job differs from the uninterrupted run"

echo
if [ $fails -eq 0 ]; then echo "slurm: all checks passed"; else echo "slurm: $fails checks FAILED"; exit 1; fi
