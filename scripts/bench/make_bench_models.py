#!/usr/bin/env python3
"""Writes the benchmark model shapes with random weights as HF safetensors folders (no download).

    python3 scripts/bench/make_bench_models.py --out /tmp/bench-models [--only llama-1b,gpt2-large]

llama-1b:   22 layers, hidden 2048, 32 heads, 4 KV heads, MLP 5632, vocab 32000, bf16 (TinyLlama's shape)
gpt2-large: 36 layers, hidden 1280, 20 heads, vocab 50257, fp16

Weights are initialised on the GPU when there is one (transformers' own init, std 0.02), so the
folders take seconds. They are large: write them under /tmp on the GPU machine, never commit them.
"""
import argparse
import os
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

SHAPES = {
    "llama-1b": (LlamaForCausalLM, LlamaConfig(
        num_hidden_layers=22, hidden_size=2048, num_attention_heads=32, num_key_value_heads=4,
        intermediate_size=5632, vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2), torch.bfloat16),
    "gpt2-large": (GPT2LMHeadModel, GPT2Config(
        n_layer=36, n_embd=1280, n_head=20, vocab_size=50257, n_positions=1024), torch.float16),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default=",".join(SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for name in a.only.split(","):
        cls, cfg, dtype = SHAPES[name]
        t0 = time.time()
        torch.manual_seed(a.seed)
        cfg.torch_dtype = dtype
        with torch.device(dev):
            model = cls(cfg).to(dtype)
        folder = os.path.join(a.out, name)
        model.save_pretrained(folder, safe_serialization=True)
        n = sum(p.numel() for p in model.parameters())
        print(f"{name}: {n / 1e6:.1f} M parameters, {dtype}, written to {folder} in {time.time() - t0:.1f} s",
              flush=True)
        del model
        if dev == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
