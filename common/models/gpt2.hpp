#pragma once
// GPT-2: learned positions, LayerNorm, Conv1D weights (stored [in, out]), gelu_new, tied head.
#include <memory>

#include "common/pieces.hpp"

namespace duet::gpt2 {

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<Block> load_block(const Checkpoint& ckpt, int64_t layer, const LoadOptions& opts);
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ckpt, const LoadOptions& opts, const Embedding* tied_from);
// A GPT-2 block whose tensors sit under `prefix` ("<prefix>ln_1.weight", ...), sized by
// ckpt.config(): for models that nest GPT-2 stacks under other names (notagen).
std::unique_ptr<Block> load_block_at(const Checkpoint& ckpt, const std::string& prefix, const LoadOptions& opts);

}  // namespace duet::gpt2
