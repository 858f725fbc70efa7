#!/usr/bin/env python3
"""transformers generate() at batch N: the batched reference beside duet-load (issue 16).

Greedy, N random prompts of --prompt-len ids (no padding), exactly --new-tokens tokens each
(EOS ignored through min_new_tokens), for each N in --batch-sizes and each variant:
  eager   the default dynamic cache, no compilation
  static  cache_implementation="static": generate() compiles the decode forward (torch.compile,
          CUDA graphs); recompiles per batch size, so each N gets a full untimed run first
Decode time = time(--new-tokens) - time(1 new token): the 1-token run is the prefill and the
first sample, so decode tok/s = N * (new_tokens - 1) / that difference (medians over --repeats).
Peak GPU memory is the caching allocator's peak for that (variant, N). Writes --json after every
entry, so a run cut short by --deadline-s or a timeout keeps what finished.
    python3 bench/hf_batched.py --model /tmp/bench-models/llama-1b --dtype bf16 \
        --batch-sizes 1,8,32,64,128 --json hf-llama-1b.json
"""
import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def log(msg):
    print(f"[hf_batched {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-sizes", default="1,8,32,64,128")
    ap.add_argument("--variants", default="eager,static")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each length")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--deadline-s", type=float, default=0, help="start no new entry after this many seconds (0: none)")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    sizes = [int(x) for x in a.batch_sizes.split(",") if x]
    if not sizes or min(sizes) < 1 or a.new_tokens < 2 or a.prompt_len < 1 or a.repeats < 1:
        ap.error("--batch-sizes must be positive integers, --new-tokens >= 2, --prompt-len and --repeats >= 1")
    t_start = time.perf_counter()
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    dev = torch.device(a.device)
    if dev.type != "cuda":
        ap.error("this benchmark measures GPU batching: give a cuda device")
    sync = lambda: torch.cuda.synchronize(dev)  # noqa: E731
    try:  # one compiled graph per batch size: keep dynamo from giving up after its default 8
        torch._dynamo.config.cache_size_limit = 64
        torch._dynamo.config.recompile_limit = 64
    except AttributeError:
        pass

    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dt).to(dev).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    vocab = model.config.vocab_size
    out = {"transformers": transformers.__version__, "torch": torch.__version__, "model": a.model,
           "gpu": torch.cuda.get_device_name(dev), "dtype": a.dtype, "prompt_len": a.prompt_len,
           "new_tokens": a.new_tokens, "repeats": a.repeats, "results": []}

    def save():
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)

    def timed(ids, n_new, kw):
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            res = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_new,
                                 min_new_tokens=n_new, do_sample=False, **kw)
        sync()
        return time.perf_counter() - t0, res

    for variant in a.variants.split(","):
        kw = {"cache_implementation": "static"} if variant == "static" else {}
        for n in sizes:
            entry = {"variant": variant, "batch": n}
            if a.deadline_s and time.perf_counter() - t_start > a.deadline_s:
                entry["skipped"] = f"past --deadline-s {a.deadline_s}"
                out["results"].append(entry)
                save()
                log(f"{variant} N={n}: skipped (deadline)")
                continue
            g = torch.Generator().manual_seed(a.seed)
            ids = torch.randint(0, vocab, (n, a.prompt_len), generator=g).to(dev)
            try:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
                # warm-up: static compiles and records graphs for this batch and cache size
                w, _ = timed(ids, a.new_tokens if variant == "static" else 8, kw)
                one = [timed(ids, 1, kw)[0] for _ in range(a.repeats)]
                full = []
                for _ in range(a.repeats):
                    t, res = timed(ids, a.new_tokens, kw)
                    full.append(t)
                new = res.shape[1] - a.prompt_len
                if new != a.new_tokens:
                    raise RuntimeError(f"generate() made {new} tokens, not {a.new_tokens}")
                decode_s = statistics.median(full) - statistics.median(one)
                steps = a.new_tokens - 1
                entry.update({
                    "decode_tok_s": n * steps / decode_s if decode_s > 0 else None,
                    "step_ms": decode_s / steps * 1e3,
                    "prefill_s": statistics.median(one), "full_s": statistics.median(full),
                    "runs_full_s": full, "runs_one_s": one, "warmup_s": w,
                    "gpu_peak_mib": torch.cuda.max_memory_allocated(dev) / 2**20,
                    "gpu_reserved_peak_mib": torch.cuda.max_memory_reserved(dev) / 2**20,
                    "tokens_row0": res[0, a.prompt_len:].tolist()})
                log(f"{variant} N={n}: {entry['decode_tok_s']:.1f} tok/s, {entry['step_ms']:.3f} ms/step, "
                    f"prefill {entry['prefill_s'] * 1e3:.1f} ms, peak {entry['gpu_peak_mib']:.0f} MiB (warm-up {w:.1f} s)")
                del res
            except Exception as e:  # OOM or a compile failure at one N must not lose the others
                entry["error"] = f"{type(e).__name__}: {str(e)[:500]}"
                log(f"{variant} N={n}: {entry['error']}")
            out["results"].append(entry)
            save()
    out["total_s"] = time.perf_counter() - t_start
    save()
    print(json.dumps({k: v for k, v in out.items() if k != "results"}), flush=True)


if __name__ == "__main__":
    main()
