#!/usr/bin/env python3
"""transformers generate() on a duet benchmark model: the reference numbers for duet-bench --hf.

Greedy, batch 1, the prompt ids duet-bench used (--prompt-file, a JSON list) or random ones,
exactly --new-tokens tokens (EOS ignored), warm-up runs excluded. Two variants:
  eager   the default dynamic cache, no compilation
  static  cache_implementation="static": generate() compiles the forward (torch.compile,
          CUDA graphs through mode "reduce-overhead")
Prints one JSON line: {"variants": [{"name", "ttft_ms", "token_ms_p50", "token_ms_p99",
"decode_tok_s", "gpu_peak_mib", "tokens"}...], ...}. Progress goes to stderr.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer


class Clock(BaseStreamer):
    """Takes the time at every token generate() hands out (the first put is the prompt)."""

    def __init__(self, sync):
        self.sync, self.times, self.first = sync, [], True

    def put(self, value):
        if self.first:
            self.first = False
            return
        self.sync()
        self.times.append(time.perf_counter())

    def end(self):
        pass


def pct(v, p):
    v = sorted(v)
    i = p / 100 * (len(v) - 1)
    lo = int(i)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--prompt-file")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="eager,static")
    a = ap.parse_args()
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dt).to(dev).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    if a.prompt_file:
        prompt = json.load(open(a.prompt_file))
    else:
        g = torch.Generator().manual_seed(1234)
        prompt = torch.randint(0, model.config.vocab_size, (a.prompt_len,), generator=g).tolist()
    ids = torch.tensor([prompt], device=dev)
    mask = torch.ones_like(ids)

    out = {"transformers": transformers.__version__, "torch": torch.__version__, "model": a.model,
           "dtype": a.dtype, "prompt_len": len(prompt), "new_tokens": a.new_tokens, "variants": []}
    for name in a.variants.split(","):
        kw = {"cache_implementation": "static"} if name == "static" else {}
        warmups = 2 if name == "static" else 1  # the first static runs compile and record graphs
        runs = []
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        for i in range(warmups + a.repeats):
            clock = Clock(sync)
            sync()
            t0 = time.perf_counter()
            with torch.no_grad():
                res = model.generate(ids, attention_mask=mask, max_new_tokens=a.new_tokens,
                                     min_new_tokens=a.new_tokens, do_sample=False, streamer=clock, **kw)
            sync()
            t = clock.times
            print(f"[hf] {name} run {i}: {len(t)} tokens in {time.perf_counter() - t0:.2f} s", file=sys.stderr,
                  flush=True)
            if i >= warmups:
                runs.append({"ttft_ms": (t[0] - t0) * 1e3,
                             "token_ms": [(t[j] - t[j - 1]) * 1e3 for j in range(1, len(t))],
                             "decode_tok_s": (len(t) - 1) / (t[-1] - t[0]),
                             "tokens": res[0, len(prompt):].tolist()})
        tok = [x for r in runs for x in r["token_ms"]]
        out["variants"].append({
            "name": name,
            "ttft_ms": statistics.median(r["ttft_ms"] for r in runs),
            "token_ms_p50": pct(tok, 50), "token_ms_p99": pct(tok, 99),
            "decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs),
            "decode_tok_s_runs": [r["decode_tok_s"] for r in runs],
            "gpu_peak_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else -1,
            "tokens": runs[0]["tokens"]})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
