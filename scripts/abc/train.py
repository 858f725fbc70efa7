#!/usr/bin/env python3
"""Train the bundled `abc-folk` model (GPU machine: torch, transformers, tokenizers).

    PYTHONUNBUFFERED=1 python3 scripts/abc/train.py --data out/abc-data --out $OUT/abc-folk \
        --samples $OUT/samples.jsonl

What it does, in order (every step writes its result before the next starts,
so a failure late in the run still leaves the earlier files):
  1. builds a character tokenizer (tokenizers library: BPE with no merges, one
     token per character seen in train, specials <pad>=0 <s>=1 </s>=2 <unk>=3,
     Fuse decoder, a post-processor adding <s>) and checks it: round trip of
     every train/validation record, and transformers.PreTrainedTokenizerFast
     loading it and giving the same ids;
  2. trains a small LlamaForCausalLM from a seeded random init (AdamW, bf16
     autocast, warmup + cosine, gradient clipping), each record one sequence
     <s> S:..M:..L:..K:..body </s>; keeps the weights with the best validation
     loss; stops at --max-steps or --time-budget seconds, whichever is first
     (the learning-rate schedule follows whichever fraction is larger);
  3. saves the best weights in fp16 (save_pretrained, safetensors) with
     config.json, generation_config.json, tokenizer.json,
     tokenizer_config.json, duet.json;
  4. reloads the saved checkpoint in fp32 and records validation loss per
     character (nats and bits) in metrics.json;
  5. reference_greedy.json: 2 prompts (of 8 fixed candidates, the 2 with the
     widest top-1/top-2 logit margin along the path), 64 greedy tokens by full
     recompute (no KV cache), fp32 on the fp16 weights;
  6. samples 100 tunes from the trained checkpoint and 100 from the same
     seeded random init (same fp16 rounding, same sampling settings and
     prompts, drawn from validation headers) into --samples.
"""
import argparse
import copy
import json
import math
import os
import random
import time
import traceback

import torch
import torch.nn.functional as F

import tokenizers
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, models, processors
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD, BOS, EOS, UNK = 0, 1, 2, 3

# What the C++ edge needs to build prompts and sample (also written to duet.json).
PROMPT_TEMPLATE = "S:{style}\nM:{meter}\nL:{unit}\nK:{key}\n"
SAMPLING = {"temperature": 0.8, "top_k": 40, "top_p": 0.95}
MAX_NEW_TOKENS = 768
# Candidates for reference_greedy.json: the 2 whose greedy path has the widest smallest
# top-1/top-2 logit gap are kept (so that a correct runtime cannot flip a pick by rounding).
REFERENCE_PROMPTS = [
    {"style": "oneills-jig", "meter": "6/8", "unit": "1/8", "key": "D"},
    {"style": "nottingham-reel", "meter": "4/4", "unit": "1/8", "key": "G"},
    {"style": "ryans-hornpipe", "meter": "4/4", "unit": "1/8", "key": "D"},
    {"style": "nottingham-waltz", "meter": "3/4", "unit": "1/4", "key": "G"},
    {"style": "oneills-reel", "meter": "2/2", "unit": "1/8", "key": "Ador"},
    {"style": "aird", "meter": "2/4", "unit": "1/8", "key": "A"},
    {"style": "oneills-slipjig", "meter": "9/8", "unit": "1/8", "key": "G"},
    {"style": "nottingham-jig", "meter": "6/8", "unit": "1/8", "key": "Em"},
]
REFERENCE_KEEP = 2
REFERENCE_NEW_TOKENS = 64

CHECKS = {}   # name -> "ok" | error text; goes to metrics.json


def log(*a):
    print("[%7.1fs]" % (time.time() - T0), *a, flush=True)


def check(name, fn):
    try:
        fn()
        CHECKS[name] = "ok"
        log("check %s: ok" % name)
    except Exception as e:  # keep going: the expensive part must still produce its files
        CHECKS[name] = "FAILED: %s: %s" % (type(e).__name__, e)
        log("check %s: FAILED" % name)
        traceback.print_exc()


def read_jsonl(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(l) for l in fh if l.strip()]


# ---------------------------------------------------------------- tokenizer
def build_tokenizer(train_texts):
    chars = sorted(set("".join(train_texts)))
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for c in chars:
        vocab[c] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", BOS)])
    return tok, chars


def check_tokenizer(tok, path, texts, train_chars):
    def round_trip():
        for t in texts:
            ids = tok.encode(t).ids
            assert ids[0] == BOS, "no <s> at the start"
            if set(t) <= train_chars:
                assert len(ids) == len(t) + 1, "not one token per character: %r" % t[:60]
                assert UNK not in ids
                dec = tok.decode(ids, skip_special_tokens=True)
                assert dec == t, "round trip differs: %r vs %r" % (dec[:60], t[:60])
                assert ids[1:] == [tok.token_to_id(c) for c in t]
        reloaded = Tokenizer.from_file(path)
        for t in texts[:200]:
            assert reloaded.encode(t).ids == tok.encode(t).ids, "tokenizer.json reload differs"
    check("tokenizer_round_trip", round_trip)

    def hf_load():
        hf = transformers.PreTrainedTokenizerFast(
            tokenizer_file=path, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
        for t in texts[:200]:
            a = hf(t)["input_ids"]
            assert a == tok.encode(t).ids, "PreTrainedTokenizerFast ids differ: %r" % t[:40]
        assert hf.decode(tok.encode(texts[0]).ids, skip_special_tokens=True) == texts[0]
        assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id, hf.unk_token_id) == (BOS, EOS, PAD, UNK)
    check("tokenizer_transformers_load", hf_load)


# ---------------------------------------------------------------- data
def encode_records(tok, recs, max_len):
    out, dropped = [], 0
    for r in recs:
        ids = tok.encode(r["text"]).ids + [EOS]
        n_prompt = len(tok.encode(r["prompt"]).ids)  # <s> + header chars
        if len(ids) > max_len:
            dropped += 1
            continue
        out.append((ids, n_prompt))
    return out, dropped


def make_batch(seqs, device):
    n = max(len(s) for s, _ in seqs)
    x = torch.full((len(seqs), n), PAD, dtype=torch.long)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    body = torch.zeros((len(seqs), n), dtype=torch.bool)  # target position is in the body (or </s>)
    for i, (s, n_prompt) in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = 1
        body[i, n_prompt:len(s)] = True
    return x.to(device), att.to(device), body.to(device)


def token_losses(model, x, att):
    """Per-target NLL [B, T-1] (targets x[:,1:]) and the target mask."""
    logits = model(input_ids=x, attention_mask=att).logits[:, :-1].float()
    tgt = x[:, 1:]
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1),
                          reduction="none").view(tgt.shape)
    return nll, att[:, 1:].bool()


def batches(data, bs, rng, shuffle=True):
    """Length-bucketed batches: shuffle, sort within chunks of 50 batches, shuffle the batches."""
    idx = list(range(len(data)))
    if shuffle:
        rng.shuffle(idx)
    chunk = bs * 50
    out = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c:c + chunk], key=lambda i: len(data[i][0]))
        out += [part[i:i + bs] for i in range(0, len(part), bs)]
    if shuffle:
        rng.shuffle(out)
    return out


@torch.no_grad()
def evaluate(model, data, device, bs=64, autocast=True):
    model.eval()
    tot = {"all": [0.0, 0], "body": [0.0, 0]}
    for b in batches(data, bs, None, shuffle=False):
        x, att, body = make_batch([data[i] for i in b], device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
            nll, m = token_losses(model, x, att)
        bm = body[:, 1:] & m
        tot["all"][0] += float(nll[m].sum()); tot["all"][1] += int(m.sum())
        tot["body"][0] += float(nll[bm].sum()); tot["body"][1] += int(bm.sum())
    model.train()
    return {k: v[0] / max(1, v[1]) for k, v in tot.items()}, {k: v[1] for k, v in tot.items()}


# ---------------------------------------------------------------- generation
@torch.no_grad()
def sample_tunes(model, tok, prompts, device, seed, bs=100):
    model.eval()
    outs = []
    gc = GenerationConfig(do_sample=True, max_new_tokens=MAX_NEW_TOKENS, bos_token_id=BOS,
                          eos_token_id=EOS, pad_token_id=PAD, **SAMPLING)
    torch.manual_seed(seed)
    for s in range(0, len(prompts), bs):
        chunk = prompts[s:s + bs]
        enc = [tok.encode(p).ids for p in chunk]
        n = max(len(e) for e in enc)
        x = torch.full((len(enc), n), PAD, dtype=torch.long)
        att = torch.zeros((len(enc), n), dtype=torch.long)
        for i, e in enumerate(enc):           # left padding
            x[i, n - len(e):] = torch.tensor(e)
            att[i, n - len(e):] = 1
        y = model.generate(input_ids=x.to(device), attention_mask=att.to(device), generation_config=gc)
        for i in range(len(enc)):
            new = y[i, n:].tolist()
            ended = EOS in new
            if ended:
                new = new[:new.index(EOS)]
            new = [t for t in new if t != PAD]
            outs.append({"prompt_ids": enc[i], "new_ids": new, "ended_with_eos": ended,
                         "text": tok.decode(new, skip_special_tokens=True)})
    return outs


@torch.no_grad()
def greedy_full_recompute(model, ids, n_new, device):
    seq = list(ids)
    margins = []
    for _ in range(n_new):
        logits = model(input_ids=torch.tensor([seq], device=device)).logits[0, -1].float()
        top2 = torch.topk(logits, 2)
        margins.append(float(top2.values[0] - top2.values[1]))
        seq.append(int(top2.indices[0]))
    return seq[len(ids):], margins


# ---------------------------------------------------------------- main
def main():
    global T0, MAX_NEW_TOKENS
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="out/abc-data")
    ap.add_argument("--out", required=True, help="model folder to write (e.g. $OUT/abc-folk)")
    ap.add_argument("--samples", required=True, help="JSONL of generated tunes (trained + random)")
    ap.add_argument("--seed", type=int, default=1903)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--attention-dropout", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=1600)
    ap.add_argument("--time-budget", type=float, default=270.0, help="seconds of training at most")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--n-samples", type=int, default=100)
    ap.add_argument("--no-random-samples", action="store_true",
                    help="sample only the trained model (not the random init too): a size comparison needs no second baseline")
    ap.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS,
                    help="sampling limit (also written to duet.json)")
    args = ap.parse_args()

    T0 = time.time()
    MAX_NEW_TOKENS = args.max_new_tokens
    os.makedirs(args.out, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    log("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers",
        tokenizers.__version__, "device", torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu")

    train_recs = read_jsonl(os.path.join(args.data, "train.jsonl"))
    val_recs = read_jsonl(os.path.join(args.data, "validation.jsonl"))
    log("records: train %d validation %d" % (len(train_recs), len(val_recs)))

    # 1. tokenizer
    tok, chars = build_tokenizer([r["text"] for r in train_recs])
    tok_path = os.path.join(args.out, "tokenizer.json")
    tok.save(tok_path)
    log("vocab: %d chars + %d specials = %d" % (len(chars), len(SPECIALS), tok.get_vocab_size()))
    check_tokenizer(tok, tok_path, [r["text"] for r in train_recs + val_recs], set(chars))
    val_unk_chars = sorted(set("".join(r["text"] for r in val_recs)) - set(chars))
    try:
        hf_tok = transformers.PreTrainedTokenizerFast(
            tokenizer_file=tok_path, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            pad_token="<pad>", model_max_length=args.max_len)
        tmp = os.path.join(args.out, ".hf_tok")
        hf_tok.save_pretrained(tmp)
        with open(os.path.join(tmp, "tokenizer_config.json")) as fh:
            tc = json.load(fh)
        tc["tokenizer_class"] = "PreTrainedTokenizerFast"   # a name transformers 4.x and 5.x both know
        with open(os.path.join(args.out, "tokenizer_config.json"), "w") as fh:
            json.dump(tc, fh, indent=1)
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)
    except Exception:
        traceback.print_exc()

    train, dropped_train = encode_records(tok, train_recs, args.max_len)
    val, dropped_val = encode_records(tok, val_recs, args.max_len)
    log("sequences: train %d (dropped %d > %d tokens), validation %d (dropped %d)" % (
        len(train), dropped_train, args.max_len, len(val), dropped_val))

    # 2. model
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.max_len, rope_theta=10000.0, rms_norm_eps=1e-5,
        hidden_act="silu", tie_word_embeddings=False, attention_dropout=args.attention_dropout,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(cfg)
    init_state = copy.deepcopy(model.state_dict())      # the random baseline
    model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    log("model: %d params (%.2f M), fp16 %.2f MB" % (n_params, n_params / 1e6, n_params * 2 / 1e6))

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            fused=device.type == "cuda")

    def lr_at(step, elapsed):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = max((step - args.warmup) / max(1, args.max_steps - args.warmup), elapsed / args.time_budget)
        prog = min(1.0, prog)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))

    rng = random.Random(args.seed)
    history = []
    best = {"loss": float("inf"), "step": -1, "state": None}
    step, epoch, tokens_seen = 0, 0, 0
    t_train = time.time()
    stop = False
    v0, _ = evaluate(model, val, device)
    log("step 0 val loss/char %.4f (body %.4f)" % (v0["all"], v0["body"]))
    history.append({"step": 0, "epoch": 0, "val_all": v0["all"], "val_body": v0["body"], "elapsed": 0.0})
    while not stop:
        epoch += 1
        run_loss, run_n = 0.0, 0
        for b in batches(train, args.batch, rng):
            elapsed = time.time() - t_train
            if step >= args.max_steps or elapsed >= args.time_budget:
                stop = True
                break
            lr = lr_at(step, elapsed)
            for g in opt.param_groups:
                g["lr"] = lr
            x, att, _ = make_batch([train[i] for i in b], device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                nll, m = token_losses(model, x, att)
            loss = nll[m].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tokens_seen += int(m.sum())
            run_loss += float(loss.detach()); run_n += 1
            if step % args.eval_every == 0:
                v, _ = evaluate(model, val, device)
                el = time.time() - t_train
                history.append({"step": step, "epoch": epoch, "train": run_loss / max(1, run_n),
                                "val_all": v["all"], "val_body": v["body"], "lr": lr, "elapsed": el})
                log("step %5d ep %3d lr %.2e train %.4f val %.4f (body %.4f) %.0f tok/s" % (
                    step, epoch, lr, run_loss / max(1, run_n), v["all"], v["body"], tokens_seen / el))
                run_loss, run_n = 0.0, 0
                if v["all"] < best["loss"]:
                    best = {"loss": v["all"], "step": step,
                            "state": {k: t.detach().clone() for k, t in model.state_dict().items()}}
    train_time = time.time() - t_train
    v, _ = evaluate(model, val, device)
    history.append({"step": step, "epoch": epoch, "val_all": v["all"], "val_body": v["body"],
                    "elapsed": train_time})
    log("end of training: step %d epoch %d %.1fs val %.4f (body %.4f)" % (step, epoch, train_time, v["all"], v["body"]))
    if v["all"] < best["loss"]:
        best = {"loss": v["all"], "step": step, "state": None}
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    log("keeping weights of step %d (val %.4f)" % (best["step"], best["loss"]))

    # 3. save fp16
    model.eval()
    model.config.attention_dropout = 0.0       # inference model: no dropout in the saved config
    model.generation_config = GenerationConfig(
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, do_sample=True,
        max_new_tokens=MAX_NEW_TOKENS, **SAMPLING)
    model.half().save_pretrained(args.out, safe_serialization=True)
    tok.save(tok_path)   # ours, not a re-serialisation
    styles = sorted({r["style"] for r in train_recs}, key=lambda s: (-sum(r["style"] == s for r in train_recs), s))

    def common(field, n):
        cnt = {}
        for r in train_recs:
            cnt[r[field]] = cnt.get(r[field], 0) + 1
        return [k for k, c in sorted(cnt.items(), key=lambda kv: -kv[1])][:n]
    duet = {
        "prompt_template": PROMPT_TEMPLATE,
        "styles": styles,
        "meters": common("meter", 9),
        "units": common("unit", 3),
        "keys": common("key", 16),
        "defaults": {"style": "nottingham-reel", "meter": "4/4", "unit": "1/8", "key": "G"},
        "sampling": SAMPLING,
        "max_new_tokens": MAX_NEW_TOKENS,
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
        "notes": ("Prompt = <s> + prompt_template filled in; the model writes the tune body and ends "
                  "with </s>. style is '<collection>-<rhythm>' or '<collection>' (rhythm unknown). "
                  "Sampling order: temperature, then top_k, then top_p (as transformers)."),
    }
    with open(os.path.join(args.out, "duet.json"), "w") as fh:
        json.dump(duet, fh, indent=1)
    log("saved", sorted(os.listdir(args.out)))

    # 4. reload fp16 checkpoint in fp32; validation loss
    try:
        ref = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.float32)
    except TypeError:
        ref = LlamaForCausalLM.from_pretrained(args.out, torch_dtype=torch.float32)
    ref.to(device).eval()
    def same_weights():
        sd = ref.state_dict()
        for k, t in model.state_dict().items():
            assert torch.equal(sd[k].to(device).half(), t.half()), k
    check("reload_matches_saved", same_weights)
    vf, counts = evaluate(ref, val, device, autocast=False)
    vt, tcounts = evaluate(ref, train, device, autocast=False)
    ln2 = math.log(2)
    metrics = {
        "val_loss_per_char_nats": vf["all"], "val_loss_per_char_bits": vf["all"] / ln2,
        "val_body_loss_per_char_nats": vf["body"], "val_body_loss_per_char_bits": vf["body"] / ln2,
        "train_loss_per_char_nats": vt["all"], "train_body_loss_per_char_nats": vt["body"],
        "val_tokens_scored": counts, "train_tokens_scored": tcounts,
        "loss_definition": ("mean NLL over every predicted token of each record after <s> "
                            "(header chars, body chars, </s>); 'body' counts only the body chars and </s>. "
                            "Computed in fp32 on the saved fp16 checkpoint."),
        "best_step": best["step"], "steps": step, "epochs": epoch, "train_seconds": train_time,
        "tokens_seen": tokens_seen, "history": history,
        "params": n_params, "fp16_bytes": n_params * 2,
        "model": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                  "kv_heads": args.kv_heads, "intermediate": args.intermediate,
                  "max_position_embeddings": args.max_len, "vocab": tok.get_vocab_size(),
                  "tie_word_embeddings": False, "rope_theta": 10000.0},
        "train": {k: getattr(args, k) for k in ("seed", "batch", "lr", "min_lr_frac", "warmup",
                                                "weight_decay", "attention_dropout", "max_steps",
                                                "time_budget", "eval_every")},
        "data": {"train_records": len(train_recs), "val_records": len(val_recs),
                 "train_sequences": len(train), "val_sequences": len(val),
                 "dropped_over_max_len": {"train": dropped_train, "validation": dropped_val},
                 "val_chars_not_in_vocab": val_unk_chars},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__,
                     "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"},
        "checks": CHECKS,
    }
    def dump_metrics():
        with open(os.path.join(args.out, "metrics.json"), "w") as fh:
            json.dump(metrics, fh, indent=1)
    dump_metrics()
    log("val loss/char (fp32 on fp16 ckpt): %.4f nats = %.4f bits; body %.4f nats = %.4f bits" % (
        vf["all"], vf["all"] / ln2, vf["body"], vf["body"] / ln2))

    # 5. reference greedy
    refs = []
    for p in REFERENCE_PROMPTS:
        text = PROMPT_TEMPLATE.format(**p)
        ids = tok.encode(text).ids
        new, margins = greedy_full_recompute(ref, ids, REFERENCE_NEW_TOKENS, device)
        refs.append({"fields": p, "prompt": text, "prompt_ids": ids, "greedy_ids": new,
                     "greedy_text": tok.decode(new, skip_special_tokens=False),
                     "min_top1_top2_logit_margin": min(margins)})
        log("greedy %r -> %r (min margin %.3f)" % (text, refs[-1]["greedy_text"], min(margins)))
    order = sorted(range(len(refs)), key=lambda i: -refs[i]["min_top1_top2_logit_margin"])
    refs = [refs[i] for i in sorted(order[:REFERENCE_KEEP])]
    log("reference prompts kept:", [r["prompt"] for r in refs])
    def cached_same():
        for r in refs:
            y = ref.generate(input_ids=torch.tensor([r["prompt_ids"]], device=device), do_sample=False,
                             max_new_tokens=REFERENCE_NEW_TOKENS, min_new_tokens=REFERENCE_NEW_TOKENS,
                             eos_token_id=None, pad_token_id=PAD)
            got = y[0, len(r["prompt_ids"]):].tolist()
            assert got == r["greedy_ids"], "generate (KV cache) differs from full recompute"
    check("greedy_cache_equals_recompute", cached_same)
    with open(os.path.join(args.out, "reference_greedy.json"), "w") as fh:
        json.dump({"description": ("Greedy continuation by full recompute (no KV cache) with "
                                   "transformers in fp32 on the fp16 checkpoint of this folder; "
                                   "ids include the leading <s> in prompt_ids; decoding does not stop at </s>."),
                   "new_tokens": REFERENCE_NEW_TOKENS, "dtype": "float32",
                   "torch": torch.__version__, "transformers": transformers.__version__,
                   "candidates": len(REFERENCE_PROMPTS), "cases": refs}, fh, indent=1)
    metrics["checks"] = CHECKS
    dump_metrics()

    # 6. samples: trained and random init, same prompts and settings
    prng = random.Random(args.seed + 1)
    picks = prng.sample(val_recs, min(args.n_samples, len(val_recs)))
    prompts = [r["prompt"] for r in picks]
    rows = []
    t = time.time()
    trained_out = sample_tunes(ref, tok, prompts, device, seed=args.seed + 2)
    log("sampled %d trained tunes in %.1fs, %d ended with </s>" % (
        len(trained_out), time.time() - t, sum(o["ended_with_eos"] for o in trained_out)))
    random_out = []
    if not args.no_random_samples:
        rand = LlamaForCausalLM(cfg)
        rand.load_state_dict(init_state)
        rand = rand.half().float().to(device).eval()   # same fp16 rounding as the shipped weights
        t = time.time()
        random_out = sample_tunes(rand, tok, prompts, device, seed=args.seed + 2)
        log("sampled %d random-init tunes in %.1fs, %d ended with </s>" % (
            len(random_out), time.time() - t, sum(o["ended_with_eos"] for o in random_out)))
    for name, outs in (("trained", trained_out), ("random", random_out)):
        for i, (r, o) in enumerate(zip(picks, outs)):
            rows.append({"model": name, "i": i, "val_id": r["id"], "style": r["style"], "meter": r["meter"],
                         "unit": r["unit"], "key": r["key"], "prompt": r["prompt"], "body": o["text"],
                         "n_new_tokens": len(o["new_ids"]), "ended_with_eos": o["ended_with_eos"]})
    with open(args.samples, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    metrics["sampling"] = {"settings": SAMPLING, "max_new_tokens": MAX_NEW_TOKENS, "seed": args.seed + 2,
                           "prompt_seed": args.seed + 1, "n": len(prompts),
                           "trained_ended_with_eos": sum(o["ended_with_eos"] for o in trained_out),
                           "random_ended_with_eos": sum(o["ended_with_eos"] for o in random_out)}
    dump_metrics()
    for o in trained_out[:3]:
        log("sample:\n" + o["text"])
    log("done; checks:", json.dumps(CHECKS))


if __name__ == "__main__":
    main()
