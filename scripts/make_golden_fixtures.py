#!/usr/bin/env python3
"""Makes the golden fixtures that duet's C++ runtime is checked against.

Runs on the GPU machine only (torch + transformers; no network needed). For each family it builds
a tiny random model, saves it with save_pretrained (safetensors, fp32), and records, for a fixed
prompt, the full-sequence logits and a greedy continuation computed by full recompute (no cache),
so the reference is plain transformers forward passes.

    python3 scripts/make_golden_fixtures.py --out tests/fixtures/models
"""
import argparse, json, os
import torch
import transformers
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

VOCAB = 128
PROMPT = [1, 17, 42, 99, 5, 63, 120, 7, 88, 31]
NEW_TOKENS = 16


def spread_weights(model, seed):
    # HF's default init (std 0.02) gives near-uniform logits on a tiny model, where greedy picks
    # would hinge on rounding. Wider weights, non-trivial norms and biases exercise every path.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name or ".ln_" in name or name.startswith("transformer.ln_f"):
                p.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.15 * noise)


def make(name):
    common = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2)
    if name == "llama_gqa":
        cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, **common)
        return LlamaForCausalLM(cfg)
    if name == "qwen2_bias":
        cfg = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, **common)
        return Qwen2ForCausalLM(cfg)
    if name == "gpt2":
        cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=128,
                         activation_function="gelu_new", **common)
        return GPT2LMHeadModel(cfg)
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    for i, name in enumerate(["llama_gqa", "qwen2_bias", "gpt2"]):
        model = make(name).float().eval()
        spread_weights(model, seed=100 + i)
        if getattr(model.config, "tie_word_embeddings", False):
            model.tie_weights()
        out = os.path.join(args.out, name)
        model.save_pretrained(out, safe_serialization=True)
        with torch.no_grad():
            ids = torch.tensor([PROMPT])
            logits = model(ids).logits[0].float()  # [n, vocab]
            seq = list(PROMPT)
            for _ in range(NEW_TOKENS):  # greedy by full recompute: no cache in the reference
                nxt = int(model(torch.tensor([seq])).logits[0, -1].argmax())
                seq.append(nxt)
        golden = {
            "model": name,
            "prompt": PROMPT,
            "logits": [[float(f"{v:.8e}") for v in row] for row in logits.tolist()],
            "greedy": seq[len(PROMPT):],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
        with open(os.path.join(out, "golden.json"), "w") as f:
            json.dump(golden, f)
        print(name, "greedy", golden["greedy"], "params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
