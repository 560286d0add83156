#!/usr/bin/env bash
# Nothing lost, nothing silent, through the real command line:
#   1. full disk: every writer (train's checkpoint, export, embed, prepare csv and
#      synth-ecg, probe --json) fails with the OS reason, leaves the previous file intact
#      and no temporary file; a small tmpfs (as root) or, without one, a file-size limit;
#   2. divergence: a run whose loss or gradient becomes NaN/Inf stops non-zero naming the
#      step and the last good checkpoint; no checkpoint holds a non-finite weight;
#   3. SIGTERM and SIGHUP stop at a step boundary with a checkpoint and exit 75;
#   4. kill -9 at many moments during training and checkpointing: resuming until done
#      gives the uninterrupted run's metrics.jsonl record for record and its weights bit
#      for bit;
#   5. bad values and bad files give one clear message and a non-zero exit;
#   6. a damaged checkpoint is refused by export, embed and --resume.
# Usage: reliability_test.sh CPC_ENGINE
set -uo pipefail
B=$1
PY=/usr/bin/python3
d=$(mktemp -d)
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$mounted" 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect_error "what" "message part" cmd... : the command must fail and print the part.
expect_error() {
  local what=$1 part=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then bad "$what: exit 0 (expected an error containing '$part')"; return; fi
  if ! grep -qF -- "$part" <<<"$out"; then bad "$what: message lacks '$part': $(tail -n 2 <<<"$out")"; return; fi
  ok "$what (exit $rc): $(grep -F -- "$part" <<<"$out" | head -n 1 | cut -c1-200)"
}
cd "$d"
cat > tiny.json <<'EOF'
{
  "data": {"channels": 12, "window": 1024},
  "encoder": {"type": "resnet", "norm": "batch",
    "stem": {"channels": 16, "kernel": 7, "stride": 4, "padding": 3},
    "blocks": [{"channels": 16, "kernel": 7, "stride": 2}, {"channels": 32, "kernel": 5, "stride": 2}],
    "latent": 32},
  "context": {"hidden": 32, "layers": 1},
  "loss": {"K": 4, "t_mode": "all", "normalize": "over_latents", "negatives": "batch", "score": "dot"},
  "train": {"batch_size": 4, "steps": 60, "lr": 5e-4, "schedule": "warmup_cosine", "warmup": 5, "clip": 1.0,
            "checkpoint_every": 7, "validate_every": 20}
}
EOF
T=(train --config tiny.json --threads 1)
"$B" prepare synth-ecg --out ecg.h5 --n 40 --seconds 3 > /dev/null || { echo "cannot prepare data"; exit 1; }

# ---------------------------------------------------------------- 1. full disk
mkdir full
if mount -t tmpfs -o size=600k tmpfs full 2>/dev/null; then
  mounted=$d/full
  reason="No space left on device"
  echo "full disk: a 600 KiB tmpfs"
else  # no privileges: writes beyond a file-size limit fail with EFBIG (SIGXFSZ ignored)
  reason="File too large"
  echo "full disk: ulimit -f (no tmpfs without root)"
fi
# run_limited KIB cmd...: on the tmpfs the disk is full already; else a file-size limit.
run_limited() {
  local kib=$1
  shift
  if [ -n "$mounted" ]; then "$@"; else (trap '' XFSZ; ulimit -f "$kib"; exec "$@"); fi
}
fill_leaving() {  # fill_leaving BYTES: leave this much free on the tmpfs
  [ -n "$mounted" ] || return 0
  local avail
  avail=$(df --output=avail -B1 full | tail -n 1)
  [ "$avail" -gt "$1" ] && head -c $((avail - $1)) /dev/zero >> full/filler 2>/dev/null
  return 0
}
"$B" "${T[@]}" --data ecg.h5 --out full/r --steps 2 > /dev/null || bad "full disk: the first run (2 steps) failed"
cp full/r/checkpoint.h5 good_ckpt.h5
# Fill the disk so the next checkpoint cannot be written beside the current one.
fill_leaving $(($(stat -c %s full/r/checkpoint.h5) / 2))
expect_error "full disk: train --resume" "$reason" run_limited 200 "$B" "${T[@]}" --data ecg.h5 --out full/r --steps 4 --resume
cmp -s full/r/checkpoint.h5 good_ckpt.h5 && ok "full disk: the checkpoint is the previous one, byte for byte" ||
  bad "full disk: the checkpoint changed"
"$B" export --ckpt full/r --out export_ok.safetensors > /dev/null && ok "full disk: the checkpoint still loads" ||
  bad "full disk: the checkpoint no longer loads"
fill_leaving 2048
expect_error "full disk: export" "$reason" run_limited 20 "$B" export --ckpt good_ckpt.h5 --out full/enc.safetensors
expect_error "full disk: embed" "$reason" run_limited 4 "$B" embed --ckpt good_ckpt.h5 --data ecg.h5 --out full/emb.h5
expect_error "full disk: prepare synth-ecg" "$reason" run_limited 100 "$B" prepare synth-ecg --out full/s.h5 --n 200 --seconds 3
mkdir csv && "$PY" -c '
import sys
for i in range(3):
    with open(f"{sys.argv[1]}/csv/r{i}.csv", "w") as f:
        f.write("a,b\n" + "".join(f"{k * 0.001},{-k * 0.002}\n" for k in range(40000)))' "$d"
expect_error "full disk: prepare csv" "$reason" run_limited 100 "$B" prepare csv --in csv --out full/c.h5
"$B" embed --ckpt good_ckpt.h5 --data ecg.h5 --out emb.h5 > /dev/null
fill_leaving 0  # probe's JSON is a few hundred bytes
expect_error "full disk: probe --json" "$reason" run_limited 0 "$B" probe --train emb.h5 --test emb.h5 --label rhythm --json full/p.json
leftover=$(find full -name '*.tmp*' | head -n 3)
[ -z "$leftover" ] && ok "full disk: no temporary file left" || bad "full disk: temporary files left: $leftover"
[ ! -e full/enc.safetensors ] && [ ! -e full/emb.h5 ] && [ ! -e full/s.h5 ] && [ ! -e full/c.h5 ] &&
  ok "full disk: no partial output in place" || bad "full disk: a partial output file exists"
[ -n "$mounted" ] && umount "$mounted" && mounted=""

# ---------------------------------------------------------------- 2. divergence
n=0
for how in "--set train.lr=1e3" "--set train.lr=1e30"; do
  n=$((n + 1))
  out=$("$B" "${T[@]}" --data ecg.h5 --out "div$n" --steps 40 $how --set train.checkpoint_every=2 2>&1)
  rc=$?
  msg=$(grep -m1 'diverged' <<<"$out")
  if [ $rc -ne 0 ] && [ -n "$msg" ]; then ok "divergence ($how): exit $rc: ${msg:0:160}"; else bad "divergence ($how): exit $rc, no 'diverged' message"; fi
  step=$(sed -E 's/.*step ([0-9]+) diverged.*/\1/' <<<"$msg")
  last=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["step"])' "div$n/metrics.jsonl" 2>/dev/null || echo 0)
  [ "$step" = $((last + 1)) ] && ok "divergence ($how): names step $step, the step after the last logged one" ||
    bad "divergence ($how): names step '$step', the last logged step is $last"
  if [ -f "div$n/checkpoint.h5" ]; then
    "$B" export --ckpt "div$n" --out "div$n.safetensors" > /dev/null &&
      "$PY" -c '
import json, struct, sys, numpy as np
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
v = np.frombuffer(raw[8 + n:], dtype="<f4")
assert np.isfinite(v).all(), "non-finite weights"' "div$n.safetensors" && ok "divergence ($how): the last checkpoint is finite and loads" ||
      bad "divergence ($how): the last checkpoint does not load or holds non-finite weights"
  fi
  grep -qiE 'nan|inf' "div$n/metrics.jsonl" && bad "divergence ($how): metrics.jsonl holds NaN/Inf" ||
    ok "divergence ($how): metrics.jsonl holds finite records only"
done
"$PY" -c '
import h5py, numpy as np
f = h5py.File("ecg.h5", "r"); g = h5py.File("huge.h5", "w")
g["signals"] = np.clip(f["signals"][:].astype(np.float64) * 1e38, -3e38, 3e38).astype(np.float32)
g["split"] = f["split"][:]'
expect_error "divergence: inputs scaled by 1e38" "step 1 diverged" "$B" "${T[@]}" --data huge.h5 --out div_huge --steps 5
[ ! -f div_huge/checkpoint.h5 ] && ok "divergence: no checkpoint of a run that diverged at its first step" ||
  bad "divergence: a checkpoint was written"

# ---------------------------------------------------------------- 3. SIGTERM and SIGHUP
for sig in TERM HUP INT; do
  "$B" "${T[@]}" --data ecg.h5 --out "sig_$sig" --steps 100000 --set train.checkpoint_every=100000 > "sig_$sig.log" 2>&1 &
  pid=$!
  # Under load the first step can take seconds: signal only once training has started.
  for _ in $(seq 600); do [ -s "sig_$sig/metrics.jsonl" ] && break; sleep 0.05; done
  sleep 0.3
  kill -s $sig $pid
  wait $pid
  rc=$?
  line=$(grep -m1 "stopped by SIG$sig" "sig_$sig.log")
  steps=$(wc -l < "sig_$sig/metrics.jsonl")
  if [ $rc -eq 75 ] && [ -n "$line" ] && grep -q "at step $steps of" <<<"$line"; then
    ok "SIG$sig: exit 75, checkpoint at step $steps, $steps records"
  else
    bad "SIG$sig: exit $rc, '$line', $steps records"
  fi
  "$B" "${T[@]}" --data ecg.h5 --out "sig_$sig" --steps 100000 --set train.checkpoint_every=100000 --resume --stop-after 2 > /dev/null &&
    [ "$(wc -l < "sig_$sig/metrics.jsonl")" -eq $((steps + 2)) ] && ok "SIG$sig: resumed from step $steps" ||
    bad "SIG$sig: resume failed"
done

# ---------------------------------------------------------------- 4. kill -9, resume, compare
"$B" "${T[@]}" --data ecg.h5 --out ref --steps 60 > /dev/null
kills=0
"$B" "${T[@]}" --data ecg.h5 --out k9 --steps 60 > /dev/null 2>&1 &
pid=$!
for i in $(seq 40); do  # kill at spread-out moments, then resume, until the run is done
  sleep "0.0$((RANDOM % 9 + 1))"
  if kill -0 $pid 2>/dev/null; then kill -9 $pid; wait $pid 2>/dev/null; kills=$((kills + 1)); else wait $pid; fi
  if [ -f k9/checkpoint.h5 ] && "$PY" -c 'import h5py,sys; sys.exit(0 if h5py.File(sys.argv[1])["step_exact"][0] == 60 else 1)' k9/checkpoint.h5 2>/dev/null; then break; fi
  if [ -f k9/checkpoint.h5 ]; then resume=(--resume); else rm -rf k9; resume=(); fi
  "$B" "${T[@]}" --data ecg.h5 --out k9 --steps 60 "${resume[@]}" > /dev/null 2>&1 &
  pid=$!
done
wait $pid 2>/dev/null
"$B" "${T[@]}" --data ecg.h5 --out k9 --steps 60 --resume > /dev/null 2>&1  # finish if the last kill was late
"$PY" - ref k9 "$kills" <<'PYEOF' && ok "kill -9 x$kills: metrics.jsonl and weights equal the uninterrupted run's" || bad "kill -9: the resumed run differs"
import json, sys, h5py, numpy as np
a, b, kills = sys.argv[1], sys.argv[2], sys.argv[3]
def records(run):
    out = []
    for line in open(f"{run}/metrics.jsonl"):
        j = json.loads(line)
        j.pop("samples_per_s")
        out.append(j)
    return out
ra, rb = records(a), records(b)
assert len(ra) == len(rb) == 60, (len(ra), len(rb))
for x, y in zip(ra, rb):
    assert x == y, (x, y)
fa, fb = h5py.File(f"{a}/checkpoint.h5"), h5py.File(f"{b}/checkpoint.h5")
names = []
fa.visit(lambda n: names.append(n) if isinstance(fa[n], h5py.Dataset) else None)
for n in names:
    assert np.array_equal(fa[n][()], fb[n][()]), n
print(f"{kills} kills: {len(rb)} records and {len(names)} tensors equal")
PYEOF

# ---------------------------------------------------------------- 5. bad values, messages
expect_error "--steps -1" "--steps" "$B" "${T[@]}" --data ecg.h5 --out bv1 --steps -1
expect_error "--seed -5" "--seed" "$B" "${T[@]}" --data ecg.h5 --out bv2 --seed -5
expect_error "--stop-after -2" "--stop-after" "$B" "${T[@]}" --data ecg.h5 --out bv3 --stop-after -2
expect_error "--threads 0" "--threads" "$B" train --config tiny.json --data ecg.h5 --out bv4 --threads 0
expect_error "--threads -1" "--threads" "$B" train --config tiny.json --data ecg.h5 --out bv5 --threads -1
expect_error "probe --l2 -1" "--l2 must be a finite number >= 0" "$B" probe --train emb.h5 --test emb.h5 --label rhythm --l2 -1
expect_error "probe --l2 nan" "--l2 must be a finite number >= 0" "$B" probe --train emb.h5 --test emb.h5 --label rhythm --l2 nan
expect_error "probe --json in a missing directory" "/nonexistent/dir" "$B" probe --train emb.h5 --test emb.h5 --label rhythm --json /nonexistent/dir/p.json
expect_error "prepare csv --ignore-column missing" "no column 'time' for --ignore-column" "$B" prepare csv --in csv --out c.h5 --ignore-column time
expect_error "min_lr above lr" "train.min_lr: 0.1 is above train.lr" "$B" "${T[@]}" --data ecg.h5 --out bv6 --set train.min_lr=0.1
expect_error "batch 1 with batch negatives" "without a negative" "$B" "${T[@]}" --data ecg.h5 --out bv7 --set train.batch_size=1
"$B" "${T[@]}" --data ecg.h5 --out rs --steps 10 > /dev/null
"$B" prepare synth-ecg --out other.h5 --n 40 --seconds 3 --seed 9 > /dev/null
expect_error "--resume with other data" "is not the data" "$B" "${T[@]}" --data other.h5 --out rs --steps 20 --resume
cp ecg.h5 ecg_copy.h5
"$B" "${T[@]}" --data ecg_copy.h5 --out rs --steps 12 --resume > /dev/null && ok "--resume with a copy of the same data" || bad "--resume with a copy of the same data failed"
expect_error "--resume with --steps below the checkpoint" "is at step 12, beyond train.steps 5" "$B" "${T[@]}" --data ecg.h5 --out rs --steps 5 --resume
n_emb=$("$B" embed --ckpt rs --data ecg.h5 --out emb_many.h5 --windows-per-recording 100000 | grep -o 'wrote emb_many.h5: [0-9]*' | grep -o '[0-9]*$')
"$PY" -c '
import h5py, sys
f = h5py.File("emb_many.h5"); r = f["recording"][:]
total = 0
d = h5py.File("ecg.h5")
L = d["signals"].shape[2]
assert len(r) == 40 * (L - 1024 + 1), (len(r), L)' && ok "embed --windows-per-recording 100000: each distinct position once ($n_emb windows)" ||
  bad "embed --windows-per-recording 100000: duplicates or wrong count"
mkdir cfgdir
expect_error "config path is a directory" "cfgdir: is a directory" "$B" train --config cfgdir --data ecg.h5 --out m1
echo '{}' > empty.json
out=$("$B" train --config empty.json --data ecg.h5 --out m2 --steps 3 2>&1)
grep -q -- "--set" <<<"$out" && bad "{} with --steps blames a --set: $out" || ok "{} with --steps: $(tail -n 1 <<<"$out" | cut -c1-120)"
"$PY" -c 'import json; j = json.load(open("tiny.json")); j["train"] = None; json.dump(j, open("null_train.json", "w"))'
"$B" train --config null_train.json --data ecg.h5 --out m3 --steps 2 > /dev/null 2>&1 && ok '"train": null with --steps trains' || bad '"train": null with --steps fails'
expect_error "unknown schedule" 'tiny.json: train.schedule: expected "constant", "warmup_cosine" or "noam", found "cosine"' "$B" "${T[@]}" --data ecg.h5 --out m4 --set train.schedule=cosine
expect_error "unknown norm" 'tiny.json: encoder.norm: expected "batch" or "channel", found "layer"' "$B" "${T[@]}" --data ecg.h5 --out m5 --set encoder.norm=layer
expect_error "a data file as checkpoint" "ecg.h5: not a checkpoint" "$B" export --ckpt ecg.h5 --out x.safetensors
expect_error "a missing checkpoint" "nope.h5: no such file" "$B" export --ckpt nope.h5 --out x.safetensors
"$PY" -c '
import h5py, numpy as np
g = h5py.File("zero_offsets.h5", "w"); g["signals"] = np.zeros((12, 0), np.float32); g["offsets"] = np.zeros(0, np.int64)'
expect_error "zero-length offsets" "'offsets' has 0 entries; expected at least 2" "$B" "${T[@]}" --data zero_offsets.h5 --out m6

# ---------------------------------------------------------------- 6. damaged checkpoints
cp rs/checkpoint.h5 damaged.h5
size=$(stat -c %s damaged.h5)
"$PY" -c '
import sys
p, size = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(size // 2); f.write(bytes((i * 7 + 3) % 256 for i in range(20000)))' damaged.h5 "$size"
expect_error "damaged checkpoint: export" "damaged.h5" "$B" export --ckpt damaged.h5 --out y.safetensors
expect_error "damaged checkpoint: embed" "damaged.h5" "$B" embed --ckpt damaged.h5 --data ecg.h5 --out y.h5
mkdir rd && cp damaged.h5 rd/checkpoint.h5
expect_error "damaged checkpoint: --resume" "checkpoint.h5" "$B" "${T[@]}" --data ecg.h5 --out rd --steps 20 --resume
# One float changed in place (the file stays valid HDF5): the checksum finds it.
cp rs/checkpoint.h5 flipped.h5
"$PY" -c '
import h5py
f = h5py.File("flipped.h5", "r+")
d = f["model/encoder.0.weight"]
v = d[()]; v.flat[3] += 0.5; d[...] = v'
expect_error "one changed weight" "dataset 'model/encoder.0.weight' is damaged" "$B" export --ckpt flipped.h5 --out z.safetensors
# A non-finite weight written behind our back: refused on load.
cp rs/checkpoint.h5 nan.h5
"$PY" -c '
import h5py, numpy as np
f = h5py.File("nan.h5", "r+")
d = f["model/encoder.0.weight"]; v = d[()]; v.flat[0] = np.nan; d[...] = v
del d.attrs["fnv1a64"]; del f.attrs["content_fnv1a64"]  # as a writer without checksums would leave it'
expect_error "NaN weight in a checkpoint" "non-finite" "$B" embed --ckpt nan.h5 --data ecg.h5 --out n.h5

echo
if [ $fails -eq 0 ]; then echo "reliability: all checks passed"; else echo "reliability: $fails checks FAILED"; exit 1; fi
