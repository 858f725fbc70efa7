#!/usr/bin/env python3
"""Makes the golden fixtures that duet's C++ runtime is checked against.

Runs on the GPU machine only (torch + transformers; no network needed). For each model it builds
a tiny random model, saves it with save_pretrained (safetensors, fp32), and records, for a fixed
prompt:
  - `logits`: the prompt's full-sequence logits (one forward, no cache);
  - `greedy`: a greedy continuation computed by full recompute (no cache);
  - `cached`: transformers' own cached decoding (prefill the prompt, then one token at a time with
    its KV cache): the greedy tokens and the logits of every decode step. For RoPE types whose
    frequencies depend on the sequence length (dynamic, longrope) transformers' cached decoding
    and its full recompute differ once past the original context; duet rotates each position as
    the cached path does, so the C++ test holds those models to `cached`.

    python3 scripts/make_golden_fixtures.py --out tests/fixtures/models [--only NAME ...]

It first prints the torch/transformers versions and, per model, the config as transformers saw it
(rope parameters, layer types, windows, soft-caps), so a run's log documents what was made.
"""
import argparse, json, os, sys
import torch
import transformers
from transformers import AutoModelForCausalLM

NEW_TOKENS = 16
# The first three models predate the others and keep their original shapes (vocab 128).
PROMPT = [1, 17, 42, 99, 5, 63, 120, 7, 88, 31]
# Newer models are smaller (vocab 64, hidden 16) so that the fixture set stays small.
SMALL_VOCAB = 64
SMALL_PROMPT = [1, 17, 42, 9, 5, 63, 20, 7, 38, 31]
SMALL_NEW_TOKENS = 12


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


def small(**kw):
    """Shapes shared by the newer tiny models: hidden 16, 2 query heads, 1 KV head."""
    base = dict(vocab_size=SMALL_VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    base.update(kw)
    return base


def llama_rope(rope_parameters, **kw):
    from transformers import LlamaConfig
    return LlamaConfig(**small(rms_norm_eps=1e-5, rope_parameters=rope_parameters, **kw))


# name -> (config factory, what it exercises). Every factory imports its classes itself, so a
# missing class fails that model only.
def make_config(name):
    if name == "llama_gqa":
        from transformers import LlamaConfig
        return LlamaConfig(vocab_size=128, bos_token_id=1, eos_token_id=2, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=128, rope_theta=500000.0, rms_norm_eps=1e-5,
                           tie_word_embeddings=False)
    if name == "qwen2_bias":
        from transformers import Qwen2Config
        return Qwen2Config(vocab_size=128, bos_token_id=1, eos_token_id=2, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=128, rope_theta=1000000.0, rms_norm_eps=1e-6,
                           tie_word_embeddings=True)
    if name == "gpt2":
        from transformers import GPT2Config
        return GPT2Config(vocab_size=128, bos_token_id=1, eos_token_id=2, n_embd=32, n_layer=2, n_head=4,
                          n_positions=128, activation_function="gelu_new")
    # --- RoPE variants on the Llama layout (head_dim 8: inv_freq 1, 0.1, 0.01, 0.001 at theta 1e4)
    if name == "rope_linear":
        return llama_rope({"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0})
    if name == "rope_dynamic":
        # max_position_embeddings 16: the prompt (10) fits, decoding goes past it (to 22)
        return llama_rope({"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0},
                          max_position_embeddings=16)
    if name == "rope_llama3":
        # wavelengths 6.3 (kept), 63 (smoothed), 628 and 6283 (divided by factor) against 64/4 .. 64/1
        return llama_rope({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 64, "rope_theta": 10000.0},
                          max_position_embeddings=512, tie_word_embeddings=True)
    if name == "rope_yarn":
        # correction range [0, 2] of 4 frequencies: extrapolated, blended and interpolated ones
        return llama_rope({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
                           "rope_theta": 10000.0}, max_position_embeddings=256)
    # --- families
    if name == "qwen3":
        from transformers import Qwen3Config
        # head_dim 16 != hidden / heads (8), as in Qwen3-0.6B (1024 hidden, 16 heads of 128)
        return Qwen3Config(**small(head_dim=16, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True))
    if name == "phi3_longrope":
        from transformers import Phi3Config
        # partial rotary (0.75 of head_dim 8 = 6 dims, 3 frequencies) as Phi-4-mini; longrope with
        # original 16 < 22 positions decoded: short factors in the prompt, long ones past 16
        return Phi3Config(**small(rms_norm_eps=1e-5, original_max_position_embeddings=16, pad_token_id=0,
                                  rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                                   "partial_rotary_factor": 0.75,
                                                   "short_factor": [1.0, 1.25, 2.5],
                                                   "long_factor": [1.5, 4.0, 12.0]}))
    if name == "mistral_window":
        from transformers import MistralConfig
        return MistralConfig(**small(rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=4, head_dim=8))
    if name == "gemma2":
        from transformers import Gemma2Config
        # layers: sliding, full, sliding (transformers' default alternation); small soft-caps so
        # that tanh bends the scores and the logits
        return Gemma2Config(**small(num_hidden_layers=3, head_dim=8, query_pre_attn_scalar=12,
                                    hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                                    sliding_window=4, attn_logit_softcapping=1.0, final_logit_softcapping=2.0,
                                    rope_theta=10000.0, tie_word_embeddings=True, pad_token_id=0))
    if name == "gemma3":
        from transformers import Gemma3TextConfig
        # per-layer-type RoPE: global layers linear x4 at theta 1e6, local ones default at 1e4
        return Gemma3TextConfig(**small(num_hidden_layers=4, head_dim=8, query_pre_attn_scalar=8,
                                        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                                        sliding_window=4, tie_word_embeddings=True, pad_token_id=0,
                                        layer_types=["sliding_attention", "sliding_attention",
                                                     "full_attention", "sliding_attention"],
                                        rope_parameters={
                                            "full_attention": {"rope_type": "linear", "factor": 4.0,
                                                               "rope_theta": 1000000.0},
                                            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}))
    raise ValueError(name)


OLD = ["llama_gqa", "qwen2_bias", "gpt2"]
NEW = ["rope_linear", "rope_dynamic", "rope_llama3", "rope_yarn", "qwen3", "phi3_longrope", "mistral_window",
       "gemma2", "gemma3"]
SEEDS = {name: 100 + i for i, name in enumerate(OLD + NEW)}


def build(name):
    cfg = make_config(name)
    # eager attention: the reference path (soft-capping included), softmax in fp32
    try:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    except (TypeError, ValueError) as e:
        print(f"[warn] {name}: eager attention refused ({e}); default attention", flush=True)
        model = AutoModelForCausalLM.from_config(cfg)
    return model


def show_config(name, model):
    c = model.config
    keys = ["model_type", "architectures", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
            "rope_parameters", "rope_scaling", "rope_theta", "partial_rotary_factor", "max_position_embeddings",
            "original_max_position_embeddings", "layer_types", "sliding_window", "use_sliding_window",
            "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping", "hidden_activation",
            "hidden_act", "tie_word_embeddings"]
    seen = {k: getattr(c, k) for k in keys if hasattr(c, k)}
    seen["class"] = type(model).__name__
    seen["attn_implementation"] = getattr(c, "_attn_implementation", None)
    print(f"[config] {name}: " + json.dumps(seen, default=str), flush=True)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def record(name, out_dir):
    old = name in OLD
    prompt = PROMPT if old else SMALL_PROMPT
    new_tokens = NEW_TOKENS if old else SMALL_NEW_TOKENS
    torch.manual_seed(0)
    model = build(name).float().eval()
    spread_weights(model, seed=SEEDS[name])
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    show_config(name, model)
    out = os.path.join(out_dir, name)
    model.save_pretrained(out, safe_serialization=True)
    with torch.no_grad():
        logits = model(torch.tensor([prompt]), use_cache=False).logits[0].float()  # [n, vocab]
        seq = list(prompt)
        for _ in range(new_tokens):  # greedy by full recompute: no cache in the reference
            seq.append(int(model(torch.tensor([seq]), use_cache=False).logits[0, -1].argmax()))
        # transformers' cached decoding, one token at a time
        res = model(torch.tensor([prompt]), use_cache=True)
        past, last = res.past_key_values, res.logits[0, -1]
        cached_seq, cached_logits = list(prompt), []
        for _ in range(new_tokens):
            nxt = int(last.argmax())
            cached_seq.append(nxt)
            res = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past, last = res.past_key_values, res.logits[0, -1]
            cached_logits.append(last.float())
        cached_logits = torch.stack(cached_logits)  # [new_tokens, vocab]: after each fed token
        # the same sequence by full recompute, to show where the two paths part
        recompute = model(torch.tensor([cached_seq]), use_cache=False).logits[0, len(prompt):].float()
    digits = 8 if old else 6
    fmt = lambda t: [[float(f"{v:.{digits}e}") for v in row] for row in t.tolist()]
    golden = {
        "model": name,
        "prompt": prompt,
        "logits": fmt(logits),
        "greedy": seq[len(prompt):],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if not old:
        golden["cached"] = {"greedy": cached_seq[len(prompt):], "logits": fmt(cached_logits),
                            "rel_diff_to_recompute": rel(cached_logits, recompute)}
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f)
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{name}: greedy {golden['greedy']} cached {cached_seq[len(prompt):]} "
          f"cached-vs-recompute rel {rel(cached_logits, recompute):.2e} "
          f"params {sum(p.numel() for p in model.parameters())} bytes {size}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", help="names to make (default: all)")
    args = ap.parse_args()
    print(f"torch {torch.__version__} transformers {transformers.__version__} python {sys.version.split()[0]}",
          flush=True)
    failed = []
    for name in OLD + NEW:
        if args.only and name not in args.only:
            continue
        try:
            record(name, args.out)
        except Exception:
            import traceback
            traceback.print_exc()
            failed.append(name)
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
