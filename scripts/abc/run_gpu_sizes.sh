#!/usr/bin/env bash
# Issue 24 item 4: would a larger abc-folk write better tunes? One GPU call (one H100 or H200, at
# most 9 minutes) trains 3 larger sizes of the same form (LlamaForCausalLM, character tokenizer,
# scripts/abc/train.py) for TRAIN_S seconds each and reports their validation loss beside the
# shipped 256/6 model's (models/abc-folk/metrics.json: 0.766 nats/char after 1,500 steps, 99 s).
#
#   run(command="bash scripts/abc/run_gpu_sizes.sh", carry=["out/abc-data"], timeout_s=540)
#
# Needs out/abc-data (prepare_dataset.py) carried, and $OUT. Writes at most 8 files, each under
# 16 MiB, 64 MiB together:
#   sizes.json        per size: hidden/layers/heads/kv/intermediate/lr, parameters, validation loss
#                     (nats and bits per character, body only too), best step, steps, epochs,
#                     seconds, samples ended with </s>; the shipped model's figures beside them
#   sizes.log         nvidia-smi, the smoke run's and each size's train.py log
#   samples.tar       per size: samples_<size>.jsonl (100 unconstrained tunes from the same 100
#                     validation headers and seeds as the shipped model's samples.jsonl, for
#                     `evaluate.py --samples`) and metrics_<size>.json
#   best_model.tar.partN  the lowest-loss size's model folder, fp16, split in 15 MiB parts (at most
#                     4), with the repo's duet.json and corpus_passages.bin copied in (its own as
#                     duet.train.json), so duet-edge can write tunes with it on the CPU:
#                       cat best_model.tar.part* | tar -x -C out/sizes
#                       python3 scripts/abc/sample_edge.py --model out/sizes/<size> --default-style 100 ...
# A 20-step smoke run of train.py comes first; the call stops there if it fails. A size that would
# not finish before DEADLINE_S is skipped (and says so in sizes.json).
#
# DRY_RUN=1 replaces train.py by a stand-in that writes files of the real sizes, to check this
# script on a machine without torch (the CPU machine): DRY_RUN=1 OUT=/tmp/o bash scripts/abc/run_gpu_sizes.sh
set -o pipefail
export PYTHONUNBUFFERED=1
: "${OUT:?set OUT}"
DATA=${DATA:-out/abc-data}
TRAIN_S=${TRAIN_S:-100}        # training seconds per size (train.py --time-budget)
OVERHEAD_S=${OVERHEAD_S:-45}   # per size: start, validation, saving, reference greedy, 100 samples
DEADLINE_S=${DEADLINE_S:-500}  # no size starts that would end after this (the call: 540 s at most)
# hidden,layers,heads,kv_heads,intermediate,lr: head_dim 32 as the shipped 256/6 (8 heads, 4 KV
# heads, 768, lr 2e-3); the learning rate lower as the model grows
SIZES=${SIZES:-"320,8,10,5,960,1.5e-3 384,8,12,4,1152,1.2e-3 512,8,16,8,1536,1e-3"}
WORK=${WORK:-/tmp/abc-sizes}
T0=$SECONDS
LOG="$OUT/sizes.log"

[ -f "$DATA/train.jsonl" ] || { echo "no $DATA/train.jsonl: carry out/abc-data (scripts/abc/prepare_dataset.py)"; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK"
TRAIN=(python3 scripts/abc/train.py)
if [ "${DRY_RUN:-0}" = 1 ]; then
    cat > "$WORK/stand_in.py" <<'EOF'
# train.py's outputs, of the sizes a real run writes (no torch): metrics.json, the fp16 weights'
# size from the shape, 100 samples copied from the shipped model's
import argparse, json, os, shutil, time
ap = argparse.ArgumentParser()
for a in ("--data", "--out", "--samples", "--lr", "--time-budget", "--max-new-tokens"):
    ap.add_argument(a)
for a in ("--hidden", "--layers", "--heads", "--kv-heads", "--intermediate", "--max-steps", "--eval-every", "--n-samples"):
    ap.add_argument(a, type=int, default=0)
ap.add_argument("--no-random-samples", action="store_true")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
h, n, i, kv = a.hidden, a.layers, a.intermediate, a.kv_heads * (a.hidden // a.heads)
params = 2 * 85 * h + n * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) + h
with open(os.path.join(a.out, "model.safetensors"), "wb") as fh:
    fh.truncate(2 * params)
for f in ("config.json", "tokenizer.json", "generation_config.json", "tokenizer_config.json", "duet.json"):
    shutil.copy(os.path.join("models/abc-folk", f), a.out)
json.dump({"val_loss_per_char_nats": 0.7 + 1e-9 * params, "val_loss_per_char_bits": 1.0,
           "val_body_loss_per_char_nats": 0.8, "val_body_loss_per_char_bits": 1.15, "best_step": 1,
           "steps": a.max_steps, "epochs": 1, "train_seconds": 1.0, "params": params,
           "sampling": {"trained_ended_with_eos": 0}}, open(os.path.join(a.out, "metrics.json"), "w"))
rows = [l for l in open("models/abc-folk/samples.jsonl") if '"trained"' in l][: a.n_samples or 100]
open(a.samples, "w").write("".join(rows))
print("stand-in: %d params" % params)
time.sleep(1)
EOF
    TRAIN=(python3 "$WORK/stand_in.py")
fi

{ nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>&1 || true; } > "$LOG"
first=${SIZES%% *}
IFS=, read -r h l hd kv im lr <<< "$first"
echo "== smoke: ${h}/${l}, 20 steps" >> "$LOG"
if ! "${TRAIN[@]}" --data "$DATA" --out "$WORK/smoke/model" --samples "$WORK/smoke/samples.jsonl" \
        --hidden "$h" --layers "$l" --heads "$hd" --kv-heads "$kv" --intermediate "$im" --lr "$lr" \
        --max-steps 20 --eval-every 10 --time-budget 20 --n-samples 4 --max-new-tokens 32 \
        --no-random-samples >> "$LOG" 2>&1; then
    echo "SMOKE RUN FAILED"; tail -60 "$LOG"; exit 1
fi
echo "SMOKE OK ($((SECONDS - T0)) s)" | tee -a "$LOG"

done_sizes=()
for spec in $SIZES; do
    IFS=, read -r h l hd kv im lr <<< "$spec"
    name="h${h}-l${l}"
    if (( SECONDS - T0 + TRAIN_S + OVERHEAD_S > DEADLINE_S )); then
        echo "== $name skipped: $((SECONDS - T0)) s gone, $TRAIN_S + $OVERHEAD_S more would pass $DEADLINE_S" | tee -a "$LOG"
        echo "{\"size\": \"$name\", \"skipped\": \"no time left in the call\"}" > "$WORK/skipped_$name.json"
        continue
    fi
    echo "== $name: hidden $h, $l layers, $hd heads ($kv KV), intermediate $im, lr $lr, $TRAIN_S s" | tee -a "$LOG"
    mkdir -p "$WORK/$name"
    if "${TRAIN[@]}" --data "$DATA" --out "$WORK/$name/model" --samples "$WORK/$name/samples.jsonl" \
            --hidden "$h" --layers "$l" --heads "$hd" --kv-heads "$kv" --intermediate "$im" --lr "$lr" \
            --max-steps 100000 --eval-every 50 --time-budget "$TRAIN_S" --no-random-samples \
            > "$WORK/$name/train.log" 2>&1; then
        done_sizes+=("$name")
    else
        echo "== $name FAILED (rc $?)" | tee -a "$LOG"
    fi
    cat "$WORK/$name/train.log" >> "$LOG"
    echo "== $name ended at $((SECONDS - T0)) s" | tee -a "$LOG"
done

python3 - "$WORK" "$OUT/sizes.json" "$SIZES" <<'EOF' | tee -a "$LOG"
import glob, json, os, sys
work, out, specs = sys.argv[1], sys.argv[2], sys.argv[3].split()
shipped = json.load(open("models/abc-folk/metrics.json"))
def row(m, **kw):
    keys = ("params", "val_loss_per_char_nats", "val_loss_per_char_bits", "val_body_loss_per_char_nats",
            "val_body_loss_per_char_bits", "best_step", "steps", "epochs", "train_seconds")
    r = dict(kw, **{k: m.get(k) for k in keys})
    r["samples_ended_with_eos"] = m.get("sampling", {}).get("trained_ended_with_eos")
    return r
rows = [row(shipped, size="h256-l6 (shipped)", hidden=256, layers=6, heads=8, kv_heads=4, intermediate=768, lr=2e-3)]
for spec in specs:
    h, l, hd, kv, im, lr = spec.split(",")
    name = "h%s-l%s" % (h, l)
    mp = os.path.join(work, name, "model", "metrics.json")
    if os.path.exists(mp):
        rows.append(row(json.load(open(mp)), size=name, hidden=int(h), layers=int(l), heads=int(hd),
                        kv_heads=int(kv), intermediate=int(im), lr=float(lr)))
    else:
        sk = os.path.join(work, "skipped_%s.json" % name)
        rows.append(json.load(open(sk)) if os.path.exists(sk) else {"size": name, "failed": "see sizes.log"})
trained = [r for r in rows[1:] if r.get("val_loss_per_char_nats") is not None]
best = min(trained, key=lambda r: r["val_loss_per_char_nats"])["size"] if trained else None
json.dump({"sizes": rows, "best": best}, open(out, "w"), indent=1)
for r in rows:
    if "val_loss_per_char_nats" in r:
        print("%-20s %9s params  val %.4f nats/char (body %.4f)  best step %s of %s, %.0f s" % (
            r["size"], r["params"], r["val_loss_per_char_nats"], r["val_body_loss_per_char_nats"] or 0,
            r["best_step"], r["steps"], r["train_seconds"] or 0))
    else:
        print("%-20s %s" % (r["size"], r.get("skipped") or r.get("failed")))
print("BEST", best or "none")
EOF

# samples and metrics of every size, one small tar
mkdir -p "$WORK/pack"
for name in "${done_sizes[@]}"; do
    cp "$WORK/$name/samples.jsonl" "$WORK/pack/samples_$name.jsonl"
    cp "$WORK/$name/model/metrics.json" "$WORK/pack/metrics_$name.json"
done
tar -C "$WORK/pack" -cf "$OUT/samples.tar" .
# the best size's model folder, ready for duet-edge, in 15 MiB parts (4 at most: 8 files in all)
best=$(python3 -c "import json; print(json.load(open('$OUT/sizes.json'))['best'] or '')")
if [ -n "$best" ]; then
    m="$WORK/$best/model"
    mv "$m/duet.json" "$m/duet.train.json"
    cp models/abc-folk/duet.json models/abc-folk/corpus_passages.bin "$m/"
    mv "$m" "$WORK/$best/$best"
    tar -C "$WORK/$best" -cf "$WORK/best_model.tar" "$best"
    size=$(stat -c %s "$WORK/best_model.tar")
    if (( size <= 4 * 15 * 1024 * 1024 )); then
        split -b 15M -d -a 1 "$WORK/best_model.tar" "$OUT/best_model.tar.part"
    else
        echo "best model $best: $size bytes, over 4 parts of 15 MiB: not returned" | tee -a "$LOG"
    fi
fi
ls -la "$OUT" | tee -a "$LOG"
echo "done in $((SECONDS - T0)) s"
