#pragma once
// The Gemma family (Gemma 2; Gemma 3: the text-only 270M and 1B, and the language model of the
// multimodal 4B and up, its vision tower left out): embedding scaled by sqrt(hidden), RMSNorm
// with (1 + w) in fp32, norms before and after both attention and MLP, GeGLU with tanh-GELU,
// attention scaled by query_pre_attn_scalar, Gemma 2's soft-capping of scores and logits, Gemma 3's
// per-head q/k norms, local (sliding-window) and global layers with their own RoPE.
#include <memory>

#include "common/pieces.hpp"

namespace duet::gemma {

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<Block> load_block(const Checkpoint& ckpt, int64_t layer, const LoadOptions& opts);
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ckpt, const LoadOptions& opts, const Embedding* tied_from);

}  // namespace duet::gemma
