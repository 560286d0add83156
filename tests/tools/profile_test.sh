#!/usr/bin/env bash
# train --profile --trace: the per-op table is printed with the ops a CPC step runs (both
# passes), its rows add up to the steps' time (coverage within a few percent: the rest is
# the tape and step bookkeeping; 23 profiled steps, so that one preemption of the test
# under a parallel ctest during the bookkeeping does not decide it: 7 once gave < 85 %),
# and the Chrome trace parses as JSON with 5 steps whose
# phases (load batch, forward, backward, optimizer) and op events lie inside them.
# Usage: profile_test.sh CPC_ENGINE SOURCE_DIR
set -euo pipefail
B=$1
SRC=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$B" prepare synth-ecg --out "$d/ecg.h5" --n 24 --seconds 3 > /dev/null
"$B" train --config "$SRC/models/configs/ecg12.json" --data "$d/ecg.h5" --out "$d/run" --steps 24 --threads 2 \
  --set data.window=1024 --set train.batch_size=4 --set train.validate_every=4 --profile --trace "$d/trace.json" \
  > "$d/out.txt"
/usr/bin/python3 - "$d" <<'PYEOF'
import json, re, sys
d = sys.argv[1]
out = open(f"{d}/out.txt").read()
m = re.search(r"profile: (\d+) steps", out); assert m and int(m.group(1)) == 23, "the profile leaves out the first step"
rows = re.findall(r"^(\w+)\s+(fwd|bwd)\s+(\d+)\s+([\d.]+)", out, re.M)
have = {(op, p) for op, p, _, _ in rows}
for need in [("conv1d", "fwd"), ("conv1d", "bwd"), ("gru", "fwd"), ("gru", "bwd"), ("linear", "fwd"), ("linear", "bwd"),
             ("batch_norm", "fwd"), ("batch_norm", "bwd"), ("contrastive_loss", "fwd"), ("adamw_update", "fwd"),
             ("grad_norm", "fwd")]:
    assert need in have, f"no row for {need}"
calls = {(op, p): int(c) for op, p, c, _ in rows}
assert calls[("gru", "fwd")] == 23 and calls[("gru", "bwd")] == 23 and calls[("adamw_update", "fwd")] == 23, calls
cov = float(re.search(r"inside ops [\d.]+ ms \(([\d.]+)%\)", out).group(1))
assert 85.0 <= cov <= 100.5, f"ops cover {cov}% of the steps' time"
t = json.load(open(f"{d}/trace.json"))
ev = [e for e in t["traceEvents"] if e.get("ph") == "X"]
steps = [e for e in ev if e["name"] == "step"]
assert len(steps) == 5, len(steps)
names = {e["name"] for e in ev}
for need in ("forward", "backward", "optimizer", "load batch", "conv1d", "conv1d (backward)", "gru", "contrastive_loss"):
    assert need in names, f"{need} missing from the trace"
for e in ev:
    assert e["dur"] >= 0
    if e["cat"] == "op":
        assert any(s["ts"] <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"] + 1 for s in steps), e
print(f"profile: {len(rows)} rows, coverage {cov}%, trace of {len(ev)} events in {len(steps)} steps")
PYEOF
echo "profile_test: ok"
