#pragma once
// The Llama family (Llama, Mistral, Qwen2): RMSNorm, RoPE, grouped-query attention with optional
// q/k/v bias, SwiGLU MLP, tied or untied head.
#include <memory>

#include "common/pieces.hpp"

namespace duet::llama {

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<Block> load_block(const Checkpoint& ckpt, int64_t layer, const LoadOptions& opts);
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ckpt, const LoadOptions& opts, const Embedding* tied_from);

}  // namespace duet::llama
