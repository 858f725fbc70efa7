#!/usr/bin/env bash
# The one GPU-machine run behind tests/fixtures/notagen and models/notagen-folk.
# Needs out/abc-data (python3 scripts/abc/prepare_dataset.py /work/shared/data/abc out/abc-data,
# carried to the GPU machine) and $OUT. Leaves everything in $OUT/notagen.tar.gz:
#   fixtures/      tiny_notagen.pth + golden.json (make_fixtures.py, CPU fp32)
#   notagen-folk/  the trained model folder;  samples.jsonl, train.log, smoke.log, fixtures.log
# Steps: fixtures (~15 s), a 10-step smoke run of the training pipeline (stops here if it breaks),
# the real training run (--time-budget seconds of training, default 120).
set -o pipefail
export PYTHONUNBUFFERED=1
: "${OUT:?set OUT}"
DATA=${DATA:-out/abc-data}
W=/tmp/notagen-run
rm -rf "$W" && mkdir -p "$W"
pack() { tar -C "$W" -czf "$OUT/notagen.tar.gz" . && ls -la "$OUT" && tar -tzvf "$OUT/notagen.tar.gz" | head -40; }
trap pack EXIT
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$W/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 scripts/notagen/make_fixtures.py --out "$W/fixtures" 2>&1 | tee "$W/fixtures.log"
if [ ! -f "$DATA/train.jsonl" ]; then   # prepare it here when the corpus came along
    for c in "${CORPUS:-}" shared/data/abc ../shared/data/abc /work/shared/data/abc; do
        [ -n "$c" ] && [ -d "$c" ] && python3 scripts/abc/prepare_dataset.py "$c" "$DATA" > "$W/prepare.log" 2>&1 && break
    done
fi
[ -f "$DATA/train.jsonl" ] || { echo "NO DATA at $DATA (run scripts/abc/prepare_dataset.py first)"; exit 1; }
if ! python3 scripts/notagen/train_folk.py --data "$DATA" --out "$W/smoke/notagen-folk" \
        --samples "$W/smoke/samples.jsonl" --max-steps 10 --eval-every 5 --time-budget 20 \
        --n-samples 4 --max-chars 48 > "$W/smoke.log" 2>&1; then
    echo "SMOKE RUN FAILED"; tail -60 "$W/smoke.log"; exit 1
fi
grep -E "check|val loss|greedy|sampled" "$W/smoke.log"
rm -rf "$W/smoke"
echo "SMOKE OK"
python3 scripts/notagen/train_folk.py --data "$DATA" --out "$W/notagen-folk" --samples "$W/samples.jsonl" \
    --time-budget "${TIME_BUDGET:-120}" "$@" 2>&1 | tee "$W/train.log"
