#!/usr/bin/env python3
"""Writes a model folder with a published model's config.json and every tensor at its real shape,
all zeros (bf16), without torch: a sparse model.safetensors, so that duet's load accounting (the
daemon's stage plan, the edge's load report) can be read for a real shape on any machine. The
weights are not meaningful; use scripts/bench/make_bench_models.py for anything that generates.

    python3 scripts/bench/write_shape_checkpoint.py --out /tmp/shapes [--only gemma3-1b]
"""
import argparse, json, os, struct

# config.json as the published models write it (transformers 4.x layout)
CONFIGS = {
    "llama32-1b": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
                   "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 131072,
                   "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu",
                   "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                   "tie_word_embeddings": True, "vocab_size": 128256, "bos_token_id": 128000,
                   "eos_token_id": 128001, "torch_dtype": "bfloat16"},
    "qwen3-0.6b": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
                   "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
                   "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
                   "max_window_layers": 28, "rms_norm_eps": 1e-6, "rope_scaling": None, "rope_theta": 1000000,
                   "sliding_window": None, "use_sliding_window": False, "hidden_act": "silu",
                   "tie_word_embeddings": True, "vocab_size": 151936, "bos_token_id": 151643,
                   "eos_token_id": 151645, "torch_dtype": "bfloat16"},
    "gemma3-1b": {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 1152,
                  "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4,
                  "num_key_value_heads": 1, "head_dim": 256, "max_position_embeddings": 32768,
                  "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6, "rope_local_base_freq": 10000,
                  "rope_scaling": None, "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
                  "attn_logit_softcapping": None, "final_logit_softcapping": None,
                  "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True, "vocab_size": 262144,
                  "bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0, "torch_dtype": "bfloat16"},
}


def tensors(c):
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    nh, kv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    gemma, qk = c["model_type"].startswith("gemma"), c["model_type"] in ("qwen3", "gemma3_text")
    out = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
    if not c["tie_word_embeddings"]:
        out["lm_head.weight"] = [V, H]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out.update({p + "input_layernorm.weight": [H], p + "post_attention_layernorm.weight": [H],
                    p + "self_attn.q_proj.weight": [nh * hd, H], p + "self_attn.k_proj.weight": [kv * hd, H],
                    p + "self_attn.v_proj.weight": [kv * hd, H], p + "self_attn.o_proj.weight": [H, nh * hd],
                    p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H],
                    p + "mlp.down_proj.weight": [H, I]})
        if gemma:
            out.update({p + "pre_feedforward_layernorm.weight": [H], p + "post_feedforward_layernorm.weight": [H]})
        if qk:
            out.update({p + "self_attn.q_norm.weight": [hd], p + "self_attn.k_norm.weight": [hd]})
    return out


def write(folder, c):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    header, off = {}, 0
    for name, shape in sorted(tensors(c).items()):
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + off)  # zeros, sparse on disk
    return off


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default=",".join(CONFIGS))
    a = ap.parse_args()
    for name in a.only.split(","):
        n = write(os.path.join(a.out, name), CONFIGS[name])
        print(f"{name}: {n / 2**20:.1f} MiB of bf16 tensors (zeros) in {os.path.join(a.out, name)}")


if __name__ == "__main__":
    main()
