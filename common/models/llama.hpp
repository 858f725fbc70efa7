#pragma once
// The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2/2.5, Qwen3, Phi-3/4-mini): RMSNorm, RoPE
// of every transformers type (partial for Phi), grouped-query attention with optional q/k/v bias,
// Qwen3's per-head q/k RMSNorm, per-layer sliding windows, SwiGLU MLP, tied or untied head.
// Phi-3's fused qkv_proj / gate_up_proj are read as they are (duet fuses the others at load).
#include <memory>

#include "common/pieces.hpp"

namespace duet::llama {

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<Block> load_block(const Checkpoint& ckpt, int64_t layer, const LoadOptions& opts);
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ckpt, const LoadOptions& opts, const Embedding* tied_from);

}  // namespace duet::llama
