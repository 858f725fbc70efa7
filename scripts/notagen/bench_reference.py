#!/usr/bin/env python3
"""The Python baselines of the NotaGen benchmark (GPU machine: torch + transformers).

    python3 scripts/notagen/bench_reference.py make --out /tmp/notagen-x        # random NotaGen-X folder (bf16)
    python3 scripts/notagen/bench_reference.py run --chars 1024 --json out.json  # the two loops, timed

make: NotaGen-X's shape (patch level 20 x 1280, char level 6, 1024 patches, heads 20) with
transformers' default random init, saved as NotaGen saves (torch.save {'model': state dict}, bf16)
and converted with convert_pth.py (so the benchmark also runs the converter on the real shape).

run, in one process, on the same GPU, bf16, for one piece of --chars characters after the prompt
"%Classical / %Beethoven, Ludwig van / %Keyboard":
  reference   a loop written like NotaGen's inference (gradio/utils.py NotaGenLMHeadModel.generate):
              per patch, the patch level re-run over every patch and the char level re-run over the
              patch's characters for each character (no KV cache); probabilities to the CPU and
              sampled there with numpy (top-k 9, top-p 0.9, then temperature 1.2)
  hf_kv       transformers with its KV cache at both levels (DynamicCache through the patch level,
              a fresh cache per patch in the char level), sampling with torch on the GPU
Both draw all 16 characters of every patch, as NotaGen does. Prints and writes chars/s and patches/s.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patchilizer as pz     # noqa: E402
from model import NotaGen    # noqa: E402
import convert_pth           # noqa: E402

PROMPT = ["%Classical\n", "%Beethoven, Ludwig van\n", "%Keyboard\n"]
X = dict(hidden=1280, patch_layers=20, char_layers=6, patch_length=1024, heads=20)


def make(args):
    torch.manual_seed(0)
    m = NotaGen(**X).to(torch.bfloat16)
    pth = os.path.join("/tmp", "notagen-x-random.pth")
    torch.save({"model": m.state_dict()}, pth)
    cfg, dropped = convert_pth.convert(pth, args.out, heads=X["heads"])
    os.remove(pth)
    print("wrote", args.out, json.dumps(cfg), "dropped", dropped)


def load(folder, device):
    from safetensors.torch import load_file
    cfg = json.load(open(os.path.join(folder, "config.json")))
    m = NotaGen(cfg["hidden_size"], cfg["patch_num_layers"], cfg["char_num_layers"], cfg["patch_length"],
                cfg["num_attention_heads"])
    sd = load_file(os.path.join(folder, "model.safetensors"))
    m.load_state_dict(sd, strict=False)
    return m.to(device=device, dtype=torch.bfloat16).eval()


def np_sample(probs, rng, top_k=9, top_p=0.9, temperature=1.2):
    # NotaGen's samplings order: top-k, top-p on the probabilities, then temperature
    probs = probs.astype(np.float64) + 1e-12
    probs /= probs.sum()
    idx = np.argsort(probs)[::-1][:top_k]
    p = probs[idx] / probs[idx].sum()
    cut = np.searchsorted(np.cumsum(p), top_p) + 1
    idx, p = idx[:cut], p[:cut] / p[:cut].sum()
    p = p ** (1.0 / temperature)
    p /= p.sum()
    return int(rng.choice(idx, p=p))


@torch.no_grad()
def reference(m, n_chars, seed, device):
    rng = np.random.default_rng(seed)
    patches = [pz.patch_ids(p) for p in pz.encode_prompt(PROMPT)]
    seq = torch.tensor([patches], device=device)
    text, n_patches = "", 0
    torch.cuda.synchronize()
    t0 = time.time()
    while len(text) < n_chars:
        enc = m.patch_level_decoder(seq)[0, -1]                    # the whole sequence, every patch
        tokens = torch.tensor([[pz.BOS]], device=device)
        out = []
        for _ in range(pz.PATCH_SIZE):
            logits = m.char_level_decoder(enc[None], tokens)[0, -1]  # the whole patch, every char
            probs = torch.softmax(logits.float(), -1).cpu().numpy()
            c = np_sample(probs, rng)
            out.append(c)
            tokens = torch.cat([tokens, torch.tensor([[c]], device=device)], 1)
        n_patches += 1
        if pz.is_eos_patch(out):
            break
        text += pz.patch_text(out)
        seq = torch.cat([seq, torch.tensor([[pz.clean_patch(out)]], device=device)], 1)
    torch.cuda.synchronize()
    return time.time() - t0, len(text), n_patches


def torch_sample(logits, gen, top_k=9, top_p=0.9, temperature=1.2):
    probs = torch.softmax(logits.float(), -1)
    v, i = torch.topk(probs, top_k)
    v = v / v.sum()
    keep = (torch.cumsum(v, 0) - v) < top_p
    v = torch.where(keep, v, torch.zeros_like(v)) ** (1.0 / temperature)
    return i[torch.multinomial(v / v.sum(), 1, generator=gen)]


@torch.no_grad()
def hf_kv(m, n_chars, seed, device):
    from transformers import DynamicCache
    gen = torch.Generator(device=device).manual_seed(seed)
    patches = [pz.patch_ids(p) for p in pz.encode_prompt(PROMPT)]
    new = torch.tensor([patches], device=device)
    past = DynamicCache()
    pl, cl = m.patch_level_decoder, m.char_level_decoder.base
    text, n_patches = "", 0
    torch.cuda.synchronize()
    t0 = time.time()
    while len(text) < n_chars:
        o = pl.base(inputs_embeds=pl.embed(new), past_key_values=past, use_cache=True)
        past = o.past_key_values
        x = o.last_hidden_state[:, -1:]                                   # [1, 1, H]
        cpast = DynamicCache()
        out = []
        for _ in range(pz.PATCH_SIZE):
            co = cl(inputs_embeds=x, past_key_values=cpast, use_cache=True)
            cpast = co.past_key_values
            tok = torch_sample(co.logits[0, -1], gen)
            out.append(tok)
            x = cl.transformer.wte(tok)[None]                              # [1, 1, H]
        out = [int(t) for t in torch.cat(out)]
        n_patches += 1
        if pz.is_eos_patch(out):
            break
        text += pz.patch_text(out)
        new = torch.tensor([[pz.clean_patch(out)]], device=device)
    torch.cuda.synchronize()
    return time.time() - t0, len(text), n_patches


def run(args):
    device = torch.device("cuda")
    m = load(args.model, device)
    res = {"model": args.model, "chars_target": args.chars, "dtype": "bf16",
           "device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import transformers
    res["transformers"] = transformers.__version__
    for name, fn in (("hf_kv", hf_kv), ("reference", reference)):
        fn(m, 48, 1, device)                        # warm-up
        secs, chars, patches = fn(m, args.chars, args.seed, device)
        res[name] = {"seconds": secs, "chars": chars, "patches": patches,
                     "chars_per_s": chars / secs, "patches_per_s": patches / secs}
        print("%-10s %5d chars %4d patches in %7.2f s: %8.1f chars/s %7.2f patches/s" % (
            name, chars, patches, secs, chars / secs, patches / secs), flush=True)
    res["gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
    with open(args.json, "w") as fh:
        json.dump(res, fh, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make")
    a.add_argument("--out", required=True)
    b = sub.add_parser("run")
    b.add_argument("--model", required=True)
    b.add_argument("--chars", type=int, default=1024)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--json", required=True)
    args = ap.parse_args()
    make(args) if args.cmd == "make" else run(args)


if __name__ == "__main__":
    main()
