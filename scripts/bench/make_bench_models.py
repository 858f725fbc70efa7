#!/usr/bin/env python3
"""Writes the benchmark model shapes with random weights as HF safetensors folders (no download).

    python3 scripts/bench/make_bench_models.py --out /tmp/bench-models [--only llama-1b,gpt2-large]

llama-1b:   22 layers, hidden 2048, 32 heads, 4 KV heads, MLP 5632, vocab 32000, bf16 (TinyLlama's shape)
gpt2-large: 36 layers, hidden 1280, 20 heads, vocab 50257, fp16
llama32-1b: Llama-3.2-1B's shape: 16 layers, hidden 2048, 32 heads / 8 KV, MLP 8192, vocab 128256, llama3 RoPE, tied
qwen3-0.6b: Qwen3-0.6B's shape: 28 layers, hidden 1024, 16 heads of 128 / 8 KV, MLP 3072, vocab 151936, tied
gemma3-1b:  Gemma-3-1B's shape: 26 layers (5 local : 1 global, window 512), hidden 1152, 4 heads of 256 / 1 KV,
            MLP 6912, vocab 262144, tied

Weights are initialised on the GPU when there is one (transformers' own init, std 0.02), so the
folders take seconds. They are large: write them under /tmp on the GPU machine, never commit them.
"""
import argparse
import os
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM


def newer_shapes():
    """Issue 12's shapes; imported here so that an older transformers still makes the others."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen3Config, Qwen3ForCausalLM
    return {
        "llama32-1b": (LlamaForCausalLM, LlamaConfig(
            num_hidden_layers=16, hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
            intermediate_size=8192, vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
            tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001), torch.bfloat16),
        "qwen3-0.6b": (Qwen3ForCausalLM, Qwen3Config(
            num_hidden_layers=28, hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
            intermediate_size=3072, vocab_size=151936, max_position_embeddings=40960, rms_norm_eps=1e-6,
            rope_theta=1000000.0, tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645),
            torch.bfloat16),
        "gemma3-1b": (Gemma3ForCausalLM, Gemma3TextConfig(
            num_hidden_layers=26, hidden_size=1152, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
            intermediate_size=6912, vocab_size=262144, max_position_embeddings=32768, rms_norm_eps=1e-6,
            query_pre_attn_scalar=256, sliding_window=512, tie_word_embeddings=True, bos_token_id=2,
            eos_token_id=1, pad_token_id=0,
            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}),
            torch.bfloat16),
    }

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
    shapes = dict(SHAPES)
    if any(n not in SHAPES for n in a.only.split(",")):
        shapes.update(newer_shapes())
    for name in a.only.split(","):
        cls, cfg, dtype = shapes[name]
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
