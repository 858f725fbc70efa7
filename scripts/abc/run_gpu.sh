#!/usr/bin/env bash
# The one GPU-machine run behind models/abc-folk (see models/abc-folk/README.md).
# Needs out/abc-data from prepare_dataset.py (carried to the GPU machine) and $OUT.
# 1. a 30-step smoke run of the whole pipeline into /tmp (stops here if anything breaks);
# 2. the real run: train, save fp16, metrics, reference_greedy.json, 100+100 sampled tunes.
# Leaves $OUT/abc-folk.tar (the model folder), $OUT/samples.jsonl, $OUT/train.log, $OUT/smoke.log.
set -o pipefail
export PYTHONUNBUFFERED=1
: "${OUT:?set OUT}"
DATA=${DATA:-out/abc-data}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
if ! python3 scripts/abc/train.py --data "$DATA" --out /tmp/abc-smoke/abc-folk \
        --samples /tmp/abc-smoke/samples.jsonl --max-steps 30 --eval-every 10 --time-budget 30 \
        --n-samples 4 --max-new-tokens 32 > "$OUT/smoke.log" 2>&1; then
    echo "SMOKE RUN FAILED"; tail -60 "$OUT/smoke.log"; exit 1
fi
grep -E "check|val loss|greedy" "$OUT/smoke.log"
echo "SMOKE OK"
python3 scripts/abc/train.py --data "$DATA" --out "$OUT/abc-folk" --samples "$OUT/samples.jsonl" "$@" \
    2>&1 | tee "$OUT/train.log"
rc=$?
tar -C "$OUT" -cf "$OUT/abc-folk.tar" abc-folk && rm -rf "$OUT/abc-folk"
ls -la "$OUT"
exit $rc
