#!/usr/bin/env bash
# The speech development benchmark (README "Evaluation: what the features encode"):
# synthesises a multi-voice, multi-language corpus with espeak-ng, prepares it, trains
# each config, embeds train/test windows, and probes three questions with the same
# linear probe: speaker ID, language ID, and language ID across voices (fit on the
# speakers of voice_group 0, tested on the held-out speakers of voice_group 1). The
# untrained encoder of each config and an MFCC baseline are probed on the same windows.
# Settings: OUT (default speech_bench), CONFIGS (default "audio_cpc_content audio_cdck2"; a
# name from models/configs/ or a path to a .json),
# STEPS (default: each config's train.steps), THREADS, PER_CELL (utterances per speaker
# and language, default 50), WINDOWS (per recording, default 2), B (the binary).
# Existing corpus, data file and runs in OUT are kept (runs resume).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-speech_bench}
CONFIGS=${CONFIGS:-audio_cpc_content audio_cdck2}
THREADS=${THREADS:-$(nproc)}
PER_CELL=${PER_CELL:-50}
WINDOWS=${WINDOWS:-2}
B=${B:-build/tools/cpc-engine}
PY=/usr/bin/python3
[ -x "$B" ] || { echo "speech_bench: $B not found; build first (README Quick start)" >&2; exit 1; }
command -v espeak-ng > /dev/null || { echo "speech_bench: espeak-ng missing (bash tools/scripts/install_deps.sh)" >&2; exit 1; }
mkdir -p "$OUT"

"$PY" tools/python/speech_bench/espeak_corpus.py --out "$OUT/corpus" --per-cell "$PER_CELL"
[ -f "$OUT/speech.h5" ] ||
  "$B" prepare wav --in "$OUT/corpus" --manifest "$OUT/corpus/manifest.csv" --out "$OUT/speech.h5" --rate 16000

STEPS_ARG=()
[ -n "${STEPS:-}" ] && STEPS_ARG=(--steps "$STEPS")
rows=()  # "name train.h5 test.h5 feature"
config_path() { case "$1" in *.json) echo "$1" ;; *) echo "models/configs/$1.json" ;; esac; }
for entry in $CONFIGS; do
  cfg=$(basename "$entry" .json)
  run="$OUT/run_$cfg"
  "$B" train --config "$(config_path "$entry")" --data "$OUT/speech.h5" --out "$run" --threads "$THREADS" \
    "${STEPS_ARG[@]}" --resume auto
  for split in train test; do
    "$B" embed --ckpt "$run" --data "$OUT/speech.h5" --out "$OUT/${cfg}_$split.h5" --split "$split" \
      --windows-per-recording "$WINDOWS" > /dev/null
    "$B" embed --ckpt "$run" --data "$OUT/speech.h5" --out "$OUT/${cfg}_random_$split.h5" --split "$split" \
      --windows-per-recording "$WINDOWS" --random-init > /dev/null
  done
  for f in c_mean z_mean; do
    rows+=("$cfg:$f $OUT/${cfg}_train.h5 $OUT/${cfg}_test.h5 $f")
    rows+=("$cfg-untrained:$f $OUT/${cfg}_random_train.h5 $OUT/${cfg}_random_test.h5 $f")
  done
done
first_entry=${CONFIGS%% *}
first=$(basename "$first_entry" .json)
window=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['data']['window'])" "$(config_path "$first_entry")")
for split in train test; do
  "$PY" tools/python/speech_bench/mfcc_features.py --data "$OUT/speech.h5" --emb "$OUT/${first}_$split.h5" \
    --window "$window" --out "$OUT/mfcc_$split.h5" > /dev/null
done
rows+=("MFCC(mean,std) $OUT/mfcc_train.h5 $OUT/mfcc_test.h5 mfcc")

probe() {  # train test feature label [where args]: prints the accuracy
  "$B" probe --train "$1" --test "$2" --feature "$3" --label "$4" "${@:5}" | head -1 | awk '{print $NF}'
}
{
  echo "| features | speaker ID | language ID | language ID across voices |"
  echo "|---|---:|---:|---:|"
  for row in "${rows[@]}"; do
    read -r name tr te feat <<< "$row"
    spk=$(probe "$tr" "$te" "$feat" speaker)
    lang=$(probe "$tr" "$te" "$feat" language)
    xv=$(probe "$tr" "$te" "$feat" language --train-where voice_group=0 --test-where voice_group=1)
    echo "| $name | $spk | $lang | $xv |"
  done
} | tee "$OUT/results.md"
echo "chance: speaker 0.10 (10), language 0.25 (4); table in $OUT/results.md"
