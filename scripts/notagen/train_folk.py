#!/usr/bin/env python3
"""Train models/notagen-folk: NotaGen's architecture (patch-level GPT-2 + character-level GPT-2)
on the same folk corpus, split and prompts as models/abc-folk (GPU machine: torch, transformers).

    PYTHONUNBUFFERED=1 python3 scripts/notagen/train_folk.py --data out/abc-data \
        --out $OUT/notagen-folk --samples $OUT/samples.jsonl --time-budget 140

Each record becomes NotaGen's patch form (scripts/notagen/patchilizer.py): BOS patch, the four
header lines S:/M:/L:/K: (abc-folk's prompt) as metadata patches, the body cut into bars, the EOS
patch; no [r:] stream markers (the tunes fit the patch context). Steps, in order, each writing its
result before the next: train (AdamW, bf16 autocast, warmup + cosine, best validation weights kept)
until --max-steps or --time-budget; save NotaGen's checkpoint form (torch.save {'model': state
dict}, fp16) and convert it with convert_pth.py (the same converter real checkpoints go through);
reload the folder in fp32 and record loss per character; reference_greedy.json (NotaGen's loop,
no KV cache, fp32 on the fp16 weights); 100 tunes from validation headers (the same 100 prompts as
abc-folk's samples) with NotaGen's sampling and with abc-folk's, and 100 from the random init.
"""
import argparse
import copy
import json
import math
import os
import random
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patchilizer as pz                         # noqa: E402
from model import NotaGen, next_patches, pick     # noqa: E402
import convert_pth                                # noqa: E402

NOTAGEN_SAMPLING = {"order": "notagen", "top_k": 9, "top_p": 0.9, "temperature": 1.2}
FOLK_SAMPLING = {"order": "hf", "top_k": 40, "top_p": 0.95, "temperature": 0.8}
MAX_CHARS = 768          # abc-folk's max_new_tokens: one character per token
REFERENCE_PROMPTS = [
    {"style": "oneills-jig", "meter": "6/8", "unit": "1/8", "key": "D"},
    {"style": "oneills-reel", "meter": "2/2", "unit": "1/8", "key": "Ador"},
]
REFERENCE_PATCHES = 24
T0 = time.time()
CHECKS = {}


def log(*a):
    print("[%7.1fs]" % (time.time() - T0), *a, flush=True)


def check(name, fn):
    try:
        fn()
        CHECKS[name] = "ok"
    except Exception as e:   # recorded, the run goes on
        CHECKS[name] = "FAILED: %s" % e
        traceback.print_exc()
    log("check", name, CHECKS[name])


def read_jsonl(path):
    with open(path) as fh:
        return [json.loads(l) for l in fh if l.strip()]


def meta_lines(prompt):
    return pz.split_lines(prompt)


def encode(rec, max_patches):
    patches = pz.encode_train(meta_lines(rec["prompt"]), pz.split_lines(rec["body"]))
    if len(patches) > max_patches:
        return None
    return [pz.patch_ids(p) for p in patches]


def batches(data, bs, rng, shuffle=True):
    idx = list(range(len(data)))
    if shuffle:
        rng.shuffle(idx)
    out = []
    for c in range(0, len(idx), bs * 50):
        part = sorted(idx[c:c + bs * 50], key=lambda i: len(data[i]))
        out += [part[i:i + bs] for i in range(0, len(part), bs)]
    if shuffle:
        rng.shuffle(out)
    return out


def make_batch(seqs, device):
    T = max(len(s) for s in seqs)
    x = torch.zeros((len(seqs), T, pz.PATCH_SIZE), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
    return x.to(device), torch.tensor([len(s) for s in seqs], device=device)


@torch.no_grad()
def evaluate(model, data, device, autocast=True, bs=64):
    model.eval()
    tot, n = 0.0, 0
    for b in batches(data, bs, None, shuffle=False):
        x, lens = make_batch([data[i] for i in b], device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
            nll, cnt = model.train_loss(x, lens)
        tot += float(nll)
        n += cnt
    model.train()
    return tot / max(1, n), n


@torch.no_grad()
def sample(model, prompts, device, settings, seed, max_chars=MAX_CHARS):
    """Batched NotaGen loop (no KV cache): prompts of the same patch count go together."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    enc = [[pz.patch_ids(p) for p in pz.encode_prompt(meta_lines(t))] for t in prompts]
    groups = {}
    for i, e in enumerate(enc):
        groups.setdefault(len(e), []).append(i)
    out = [None] * len(prompts)
    for _, members in sorted(groups.items()):
        seqs = torch.tensor([enc[i] for i in members], device=device)
        texts = ["" for _ in members]
        done = [False for _ in members]
        ended = [False for _ in members]
        while not all(done) and seqs.shape[1] < model.patch_length:
            patches, _ = next_patches(model, seqs, [[] for _ in members], settings["order"],
                                      settings["temperature"], settings["top_k"], settings["top_p"], gen)
            for k, ids in enumerate(patches):
                if done[k]:
                    continue
                if pz.is_eos_patch(ids):
                    done[k], ended[k] = True, True
                    continue
                texts[k] += pz.patch_text(ids)
                if len(texts[k]) >= max_chars:
                    done[k] = True
            nxt = torch.tensor([pz.clean_patch(ids) for ids in patches], device=device)
            seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        for k, i in enumerate(members):
            out[i] = {"text": texts[k][:max_chars], "ended_with_eos": ended[k]}
    return out


@torch.no_grad()
def greedy(model, prompt, n_patches, device):
    seq = [pz.patch_ids(p) for p in pz.encode_prompt(meta_lines(prompt))]
    raw, text, margins = [], "", []
    for _ in range(n_patches):
        x = torch.tensor([seq], device=device)
        out, lg = next_patches(model, x, [[]], "greedy", record_logits=True)
        top2 = torch.topk(lg[0], 2, dim=-1).values
        margins.append(float((top2[:, 0] - top2[:, 1]).min()))
        raw.append(out[0])
        if pz.is_eos_patch(out[0]):
            break
        text += pz.patch_text(out[0])
        seq.append(pz.clean_patch(out[0]))
    return raw, text, margins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="out/abc-data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--seed", type=int, default=1903)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--patch-layers", type=int, default=4)
    ap.add_argument("--char-layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--patch-length", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--time-budget", type=float, default=140.0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--n-samples", type=int, default=100)
    ap.add_argument("--max-chars", type=int, default=MAX_CHARS)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    train_recs = read_jsonl(os.path.join(args.data, "train.jsonl"))
    val_recs = read_jsonl(os.path.join(args.data, "validation.jsonl"))
    train = [e for e in (encode(r, args.patch_length) for r in train_recs) if e is not None]
    val = [e for e in (encode(r, args.patch_length) for r in val_recs) if e is not None]
    lens = sorted(len(e) for e in train)
    log("records: train %d -> %d sequences, validation %d -> %d (over %d patches dropped); "
        "patches per tune median %d max %d" % (len(train_recs), len(train), len(val_recs), len(val),
                                              args.patch_length, lens[len(lens) // 2], lens[-1]))

    def round_trip():   # patches give back the text exactly
        for r in train_recs[:500] + val_recs:
            p = pz.encode_train(meta_lines(r["prompt"]), pz.split_lines(r["body"]))
            text = "".join(pz.patch_text([ord(c) for c in q]) for q in p[1:-1])
            assert text == r["prompt"] + r["body"], r["id"]
    check("patches_round_trip", round_trip)

    model = NotaGen(args.hidden, args.patch_layers, args.char_layers, args.patch_length, args.heads,
                    dropout=args.dropout)
    init_state = copy.deepcopy(model.state_dict())
    model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    log("model: %d params (%.2f M), fp16 %.2f MB" % (n_params, n_params / 1e6, n_params * 2 / 1e6))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wte" not in n and "wpe" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95),
                            fused=device.type == "cuda")

    def lr_at(step, elapsed):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = min(1.0, max((step - args.warmup) / max(1, args.max_steps - args.warmup),
                            elapsed / args.time_budget))
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))

    rng = random.Random(args.seed)
    history, best = [], {"loss": float("inf"), "step": -1, "state": None}
    step, epoch, chars_seen, stop = 0, 0, 0, False
    t_train = time.time()
    v0, _ = evaluate(model, val, device)
    log("step 0 val loss/char %.4f" % v0)
    history.append({"step": 0, "val": v0, "elapsed": 0.0})
    while not stop:
        epoch += 1
        run, run_n = 0.0, 0
        for b in batches(train, args.batch, rng):
            el = time.time() - t_train
            if step >= args.max_steps or el >= args.time_budget:
                stop = True
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, el)
            x, lens_b = make_batch([train[i] for i in b], device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                nll, cnt = model.train_loss(x, lens_b)
            loss = nll / cnt
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            chars_seen += cnt
            run += float(loss.detach())
            run_n += 1
            if step % args.eval_every == 0:
                v, _ = evaluate(model, val, device)
                el = time.time() - t_train
                history.append({"step": step, "epoch": epoch, "train": run / run_n, "val": v, "elapsed": el})
                log("step %5d ep %3d train %.4f val %.4f %.0f chars/s" % (step, epoch, run / run_n, v, chars_seen / el))
                run, run_n = 0.0, 0
                if v < best["loss"]:
                    best = {"loss": v, "step": step,
                            "state": {k: t.detach().clone() for k, t in model.state_dict().items()}}
    train_time = time.time() - t_train
    v, _ = evaluate(model, val, device)
    history.append({"step": step, "epoch": epoch, "val": v, "elapsed": train_time})
    if v < best["loss"]:
        best = {"loss": v, "step": step, "state": None}
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    log("trained %d steps (%d epochs) in %.1fs; keeping step %d (val %.4f)" % (
        step, epoch, train_time, best["step"], best["loss"]))

    # save as NotaGen does, convert with the converter real checkpoints go through
    model.eval()
    pth = "/tmp/notagen-folk.pth"
    torch.save({"model": {k: t.detach().half().cpu() for k, t in model.state_dict().items()},
                "steps": step}, pth)
    cfg, dropped = convert_pth.convert(pth, args.out, heads=args.heads, stream=False, extra_duet={
        "prompt": {"form": "abc-header", "template": "S:{style}\nM:{meter}\nL:{unit}\nK:{key}\n"},
        "sampling": NOTAGEN_SAMPLING, "max_chars": args.max_chars})
    log("converted: %s dropped %s" % (json.dumps(cfg), dropped))

    ref = NotaGen(args.hidden, args.patch_layers, args.char_layers, args.patch_length, args.heads)
    from safetensors.torch import load_file
    st = load_file(os.path.join(args.out, "model.safetensors"))
    missing = ref.load_state_dict({k: t.float() for k, t in st.items()}, strict=False)
    log("reload: missing %s unexpected %s" % (missing.missing_keys, missing.unexpected_keys))
    ref.to(device).eval()

    def same_weights():
        sd = ref.state_dict()
        for k, t in model.state_dict().items():
            assert torch.equal(sd[k].half(), t.half()), k
    check("reload_matches_saved", same_weights)
    vf, nv = evaluate(ref, val, device, autocast=False)
    vt, nt = evaluate(ref, train, device, autocast=False)
    metrics = {
        "val_loss_per_char_nats": vf, "val_loss_per_char_bits": vf / math.log(2),
        "train_loss_per_char_nats": vt, "val_chars_scored": nv, "train_chars_scored": nt,
        "loss_definition": ("mean NLL over the characters the char decoder predicts: every character "
                            "of every patch after the BOS patch (header lines, bars, the EOS character "
                            "closing each line or bar, and the EOS patch's 16), padding excluded. fp32 on "
                            "the saved fp16 weights."),
        "best_step": best["step"], "steps": step, "epochs": epoch, "train_seconds": train_time,
        "chars_seen": chars_seen, "history": history, "params": n_params,
        "config": cfg, "train": {k: getattr(args, k) for k in (
            "seed", "batch", "lr", "min_lr_frac", "warmup", "weight_decay", "dropout", "max_steps",
            "time_budget", "eval_every")},
        "data": {"train_sequences": len(train), "val_sequences": len(val),
                 "dropped_over_patch_length": {"train": len(train_recs) - len(train),
                                               "validation": len(val_recs) - len(val)}},
        "versions": {"torch": torch.__version__,
                     "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"},
        "checks": CHECKS,
    }

    def dump():
        with open(os.path.join(args.out, "metrics.json"), "w") as fh:
            json.dump(metrics, fh, indent=1)
    dump()
    log("val loss/char fp32 on fp16: %.4f nats (%.4f bits); train %.4f" % (vf, vf / math.log(2), vt))

    # reference greedy (CPU fp32 would be slower; the GPU fp32 path is exact enough: margins kept)
    refs = []
    for p in REFERENCE_PROMPTS:
        prompt = "S:{style}\nM:{meter}\nL:{unit}\nK:{key}\n".format(**p)
        raw, text, margins = greedy(ref, prompt, REFERENCE_PATCHES, device)
        refs.append({"fields": p, "prompt": prompt, "greedy_raw": raw, "greedy_text": text,
                     "min_top1_top2_logit_margin": min(margins)})
        log("greedy %r -> %r (min margin %.3f)" % (prompt, text, min(margins)))
    with open(os.path.join(args.out, "reference_greedy.json"), "w") as fh:
        json.dump({"description": "NotaGen's loop (no KV cache), greedy, fp32 on the fp16 weights; "
                                  "greedy_raw = the 16 characters of each generated patch",
                   "patches": REFERENCE_PATCHES, "torch": torch.__version__, "cases": refs}, fh, indent=1)

    # samples
    prng = random.Random(args.seed + 1)
    picks = prng.sample(val_recs, min(args.n_samples, len(val_recs)))
    prompts = [r["prompt"] for r in picks]
    sets = {}
    for name, m, settings in (("trained", ref, NOTAGEN_SAMPLING), ("trained_folk_sampling", ref, FOLK_SAMPLING)):
        t = time.time()
        sets[name] = sample(m, prompts, device, settings, args.seed + 2, args.max_chars)
        log("sampled %s: %d tunes in %.1fs, %d ended with EOS" % (
            name, len(prompts), time.time() - t, sum(o["ended_with_eos"] for o in sets[name])))
    rand = NotaGen(args.hidden, args.patch_layers, args.char_layers, args.patch_length, args.heads)
    rand.load_state_dict(init_state)
    rand = rand.half().float().to(device).eval()
    sets["random"] = sample(rand, prompts, device, NOTAGEN_SAMPLING, args.seed + 2, args.max_chars)
    with open(args.samples, "w") as fh:
        for name, outs in sets.items():
            for i, (r, o) in enumerate(zip(picks, outs)):
                fh.write(json.dumps({"model": name, "i": i, "val_id": r["id"], "style": r["style"],
                                     "meter": r["meter"], "unit": r["unit"], "key": r["key"],
                                     "prompt": r["prompt"], "body": o["text"],
                                     "n_new_chars": len(o["text"]),
                                     "ended_with_eos": o["ended_with_eos"]}) + "\n")
    metrics["sampling"] = {"trained": NOTAGEN_SAMPLING, "trained_folk_sampling": FOLK_SAMPLING,
                           "random": NOTAGEN_SAMPLING, "seed": args.seed + 2, "prompt_seed": args.seed + 1,
                           "max_chars": args.max_chars,
                           "ended_with_eos": {k: sum(o["ended_with_eos"] for o in v) for k, v in sets.items()}}
    metrics["checks"] = CHECKS
    dump()
    for o in sets["trained"][:2]:
        log("sample:\n" + o["text"])
    log("done; checks:", json.dumps(CHECKS))


if __name__ == "__main__":
    main()
