#!/usr/bin/env python3
"""Golden fixtures for duet's notagen family (GPU machine: torch + transformers; runs on the CPU
in fp32 so that the reference is exact).

Builds NotaGen's architecture from transformers' GPT-2 classes (scripts/notagen/model.py) at a tiny
size with random weights, saves it the way NotaGen's training does (torch.save({'model': state_dict,
...}) with NotaGen's tensor names, plus the causal-mask buffers older transformers kept), and records
for two prompts: the patch ids, every patch-level output (after ln_f), the character logits of the
first generated patch, and a greedy piece by NotaGen's reference loop (no KV cache).

    python3 scripts/notagen/make_fixtures.py --out tests/fixtures/notagen
"""
import argparse
import json
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patchilizer as pz              # noqa: E402
from model import NotaGen, next_patches  # noqa: E402
import convert_pth                     # noqa: E402

TINY = dict(hidden=32, patch_layers=2, char_layers=2, patch_length=64, heads=4)
PROMPTS = [
    {"name": "metadata",
     "meta": ["%Classical\n", "%Beethoven, Ludwig van\n", "%Keyboard\n"], "body": [], "patches": 24},
    {"name": "continuation",
     "meta": ["%Romantic\n", "%Chopin, Frederic\n", "%Keyboard\n", "L:1/8\n", "M:3/4\n", "K:Ab\n"],
     "body": ["[r:0/1]|:ABcd efga|bagf edcB:|\n", "[r:1/0]|:c2"], "patches": 16},
]


def spread_weights(model, seed):
    # HF's init (std 0.02) gives near-uniform logits on a tiny model; wider weights, non-trivial
    # norms and biases exercise every path and keep greedy picks away from ties.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if ".ln_" in name:
                p.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif "patch_embedding" in name:
                p.copy_(0.3 * noise)
            else:
                p.copy_(0.15 * noise)


def rows(t):
    return [[float("%.8e" % v) for v in r] for r in t.tolist()]


def greedy_piece(model, patches, n_new):
    """NotaGen's loop, greedy: full recompute per patch; forced prefix from a partial last patch."""
    full = [pz.patch_ids(p) for p in patches if len(p) == pz.PATCH_SIZE or p.endswith(chr(pz.EOS))]
    prefix = [ord(c) for c in patches[-1]] if len(full) < len(patches) else []
    seq, raw, text, logits0, margins = list(full), [], "", None, []
    for k in range(n_new):
        x = torch.tensor([seq])
        out, lg = next_patches(model, x, [prefix if k == 0 else []], "greedy", record_logits=True)
        top2 = torch.topk(lg[0], 2, dim=-1).values
        m = (top2[:, 0] - top2[:, 1])
        start = len(prefix) if k == 0 else 0
        margins.append(float(m[start:].min()))
        if k == 0:
            logits0 = lg[0]
        ids = out[0]
        raw.append(ids)
        if pz.is_eos_patch(ids):
            break
        text += pz.patch_text(ids)
        seq.append(pz.clean_patch(ids))
        if len(seq) >= model.patch_length:
            break
    return raw, text, logits0, margins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model = NotaGen(**TINY).float().eval()
    spread_weights(model, 2024)
    # untie the char head from its embedding? NotaGen's GPT2LMHeadModel ties them: keep tied.
    sd = model.state_dict()
    ckpt = {k: v.clone() for k, v in sd.items()}
    n = TINY["patch_length"]
    # what transformers < 4.31 kept in GPT-2 state dicts; the converter must drop them
    ckpt["patch_level_decoder.base.h.0.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n)
    ckpt["patch_level_decoder.base.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    pth = os.path.join(args.out, "tiny_notagen.pth")
    torch.save({"model": ckpt, "epoch": 7, "min_eval_loss": 0.5,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}}, pth)

    golden = {"config": TINY, "patch_size": pz.PATCH_SIZE, "torch": torch.__version__,
              "transformers": transformers.__version__, "dtype": "float32", "device": "cpu",
              "cases": []}
    with torch.no_grad():
        for pr in PROMPTS:
            patches = pz.encode_prompt(pr["meta"], pr["body"])
            full = [pz.patch_ids(p) for p in patches if len(p) == pz.PATCH_SIZE or p.endswith(chr(pz.EOS))]
            hidden = model.patch_level_decoder(torch.tensor([full]))[0]
            raw, text, logits0, margins = greedy_piece(model, patches, pr["patches"])
            golden["cases"].append({
                "name": pr["name"], "prompt": "".join(pr["meta"] + pr["body"]),
                "meta": pr["meta"], "body": pr["body"],
                "patches": [[ord(c) for c in p] for p in patches],    # last may be partial
                "patch_hidden": rows(hidden), "char_logits_first": rows(logits0),
                "greedy_raw": raw, "greedy_text": text, "min_margin": min(margins)})
            print(pr["name"], "patches", len(patches), "greedy", len(raw), "min margin %.4f" % min(margins),
                  repr(text[:80]))
    with open(os.path.join(args.out, "golden.json"), "w") as fh:
        json.dump(golden, fh)

    # the converter (stdlib) must give back exactly these tensors
    folder = os.path.join("/tmp", "notagen_tiny_converted")
    cfg, dropped = convert_pth.convert(pth, folder, heads=TINY["heads"])
    from safetensors.torch import load_file
    got = load_file(os.path.join(folder, "model.safetensors"))
    ok = set(got) == {k for k in sd if k != "char_level_decoder.base.lm_head.weight"} and \
        all(torch.equal(got[k], sd[k]) for k in got)
    print("converter check:", "ok" if ok else "MISMATCH", "dropped", dropped, "config", json.dumps(cfg))
    sizes = {"hidden_size": 32, "patch_num_layers": 2, "char_num_layers": 2, "patch_length": 64,
             "patch_size": 16, "char_positions": 17, "intermediate_size": 128}
    print("converter sizes:", "ok" if all(cfg[k] == v for k, v in sizes.items()) else "MISMATCH")


if __name__ == "__main__":
    main()
