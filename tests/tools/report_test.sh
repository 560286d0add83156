#!/usr/bin/env bash
# `cpc-engine report` in a real headless browser (Debian's chromium): a run of 30 steps
# with validation every 10 and a probe; the page is loaded offline, its DOM dumped and a
# screenshot taken. Checks: every chart is there and each curve has as many points as
# metrics.jsonl has values (training: 30, validation: 3, one curve per k), the probe's
# confusion matrix is there, the page fetches nothing (no http), the screenshot is not
# blank; a log with a partial last line (a killed run) still gives a report.
# Usage: report_test.sh CPC_ENGINE SOURCE_DIR
set -euo pipefail
B=$1
SRC=$2
PY=/usr/bin/python3
BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || { echo "report_test: chromium is not installed (tools/scripts/install_deps.sh)"; exit 1; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cd "$d"
T=(train --config "$SRC/models/configs/ecg12.json" --data ecg.h5 --threads 2 --set data.window=1024
   --set train.batch_size=4 --set train.validate_every=10 --set encoder.norm=batch)
"$B" prepare synth-ecg --out ecg.h5 --n 40 --seconds 3 > /dev/null
"$B" "${T[@]}" --out run --steps 30 > /dev/null
"$B" embed --ckpt run --data ecg.h5 --out tr.h5 --split train > /dev/null
"$B" embed --ckpt run --data ecg.h5 --out te.h5 --split test > /dev/null
"$B" probe --train tr.h5 --test te.h5 --label rhythm --json probe.json > /dev/null
"$B" report run --probe probe.json
! grep -qiE '(src|href)="?https?:|url\(|<script|<link|@import' run/report.html ||
  { echo "the page loads something or runs scripts"; exit 1; }
browse() { "$BROWSER" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "$@" 2> /dev/null; }
browse --dump-dom "file://$d/run/report.html" > dom.html
browse --window-size=1400,1800 --screenshot="$d/shot.png" "file://$d/run/report.html" > /dev/null
"$PY" - "$d" <<'PYEOF'
import json, re, struct, sys, zlib
d = sys.argv[1]
recs = [json.loads(l) for l in open(f"{d}/run/metrics.jsonl")]
dom = open(f"{d}/dom.html").read()
assert len(recs) == 30, len(recs)
charts = dict(re.findall(r'<svg class="chart" data-metric="([a-z_]+)".*?</svg>', dom, re.S) and
              [(m.group(1), m.group(0)) for m in re.finditer(r'<svg class="chart" data-metric="([a-z_]+)".*?</svg>', dom, re.S)])
for name in ("loss", "accuracy", "accuracy_per_k", "lr", "grad_norm", "samples_per_s"):
    assert name in charts, f"chart {name} missing from the rendered page"
def paths(svg):
    out = {}
    for m in re.finditer(r'<path data-series="([^"]+)" data-points="(\d+)"[^>]* d="([^"]+)"', svg):
        n = len(re.findall(r"[ML]", m.group(3)))
        assert n == int(m.group(2)), (m.group(1), n, m.group(2))
        out[m.group(1)] = n
    return out
val = sum(1 for r in recs if "val_loss" in r)
assert val == 3, val
p = paths(charts["loss"]);      assert p == {"training loss": 30, "validation loss": val}, p
p = paths(charts["accuracy"]);  assert p == {"training accuracy": 30, "validation accuracy": val}, p
p = paths(charts["accuracy_per_k"]); K = len(recs[0]["accuracy_per_k"])
assert p == {f"k = {k + 1}": 30 for k in range(K)}, p
for name in ("lr", "grad_norm", "samples_per_s"):
    assert list(paths(charts[name]).values()) == [30], (name, paths(charts[name]))
probe = json.load(open(f"{d}/probe.json"))
cells = re.findall(r'<table class="confusion">.*?</table>', dom, re.S)
assert cells and len(re.findall(r"<td", cells[0])) == len(probe["classes"]) * (len(probe["classes"]) + 1), "confusion matrix"
# The screenshot: a PNG decoded here (8-bit RGB/RGBA, filters 0-4), not blank.
raw = open(f"{d}/shot.png", "rb").read()
assert raw[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, w = 8, b"", 0
while pos < len(raw):
    n, kind = struct.unpack(">I4s", raw[pos:pos + 8]); body = raw[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT": idat += body
bpp = {2: 3, 6: 4}[ctype]; stride = w * bpp
data = zlib.decompress(idat); prev = bytearray(stride); rows = []
for y in range(h):
    f, line = data[y * (stride + 1)], bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
colors, ink = set(), 0
for r in rows[::4]:
    for x in range(0, stride, bpp * 4):
        px = r[x:x + 3]; colors.add(px); ink += px != b"\xff\xff\xff"
total = len(rows[::4]) * len(range(0, stride, bpp * 4))
print(f"report: 6 charts, curves of 30 and {val} points, {K} k curves, {len(colors)} colours, {100 * ink / total:.1f}% ink")
assert len(colors) > 20 and ink > 0.02 * total, (len(colors), ink, total)
PYEOF
# A killed run's log (a partial last line) still gives a report, and says so.
head -c -20 run/metrics.jsonl > cut.jsonl && cp cut.jsonl run/metrics.jsonl
"$B" report run --out cut.html | grep -q "29 steps"
grep -q "1 unreadable lines skipped" cut.html
echo "report_test: ok"
