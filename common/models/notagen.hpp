#pragma once
// NotaGen (github.com/ElectricAlexis/NotaGen): a patch-level GPT-2 over patches of P (16) ASCII
// characters, and a character-level GPT-2 that writes the next patch's characters starting from
// the patch level's output. How duet cuts it:
//   "embedding"  the patch embedding, Linear(P*128 -> H) of the patch's one-hot characters, plus
//                the patch level's learned positions
//   backbone     the patch level's GPT-2 blocks (gpt2::load_block_at): the daemon runs them with the
//                same engine, KV pool, batching and plans as any model, one position per patch
//   "norm"       the patch level's ln_f
//   "head"       CharDecoder: the whole character level (embedding, blocks, ln_f, tied head) with
//                its own small KV cache within one patch
// Tensor names are NotaGen's (scripts/notagen/convert_pth.py keeps them).
#include <torch/types.h>

#include <memory>
#include <vector>

#include "common/backbone.hpp"
#include "common/pieces.hpp"

namespace duet::notagen {

// The character level's sizes and the prompt convention, from config.json (the patch level's
// sizes are ModelConfig's). Throws naming the file and field.
struct Shape {
  int64_t patch_size = 16;
  int64_t char_layers = 0;
  int64_t char_positions = 0;  // the character decoder's learned positions (patch_size + 1)
  int64_t char_vocab = 128;
  bool stream_markers = false;  // body lines start with [r:<line>/<lines after>] (NotaGen's checkpoints)
  static Shape of(const Checkpoint& ckpt);
};

// forward(ids [n, P] int64 characters, start) -> [n, H]: patches at positions [start, start+n).
std::unique_ptr<Embedding> load_embedding(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<Block> load_block(const Checkpoint& ckpt, int64_t layer, const LoadOptions& opts);
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ckpt, const LoadOptions& opts);

// The character level for one piece at a time (weights its own; not thread-safe). A patch is
// begin() with the patch level's normed output, then next() once per character chosen.
class CharDecoder {
 public:
  CharDecoder(const Checkpoint& ckpt, const LoadOptions& opts);
  ~CharDecoder();

  // h [H] or [1, H] (patch level, after ln_f); prefix = characters the patch must start with
  // (fewer than P). Runs positions 0..len(prefix) and returns the next character's logits
  // [vocab] fp32.
  torch::Tensor begin(const torch::Tensor& h, const std::vector<int32_t>& prefix = {});
  // Feeds the character just chosen; returns the following character's logits [vocab] fp32.
  torch::Tensor next(int32_t c);
  // The same with the character as an int64 [] tensor on the decoder's device (a DeviceSampler's
  // pick): no sync. Its range is not checked (that would be one): a pick over this decoder's
  // logits is in range.
  torch::Tensor next(const torch::Tensor& c);
  // Logits [P, vocab] of every character of `patch` given h (teacher forcing, one step): tests.
  torch::Tensor score(const torch::Tensor& h, const std::vector<int32_t>& patch);

  const Shape& shape() const { return shape_; }
  int64_t weight_bytes() const;

 private:
  torch::Tensor logits_of(const torch::Tensor& x, int64_t start);  // x [n, H] -> last position's logits
  void check_next() const;  // a patch begun, with room for one more character

  Shape shape_;
  c10::Device device_;
  torch::Tensor wte_, wpe_, ln_w_, ln_b_, head_;  // [V, H], [positions, H], [H], [H], [V, H]
  double eps_ = 1e-5;
  std::unique_ptr<LocalBackbone> blocks_;
  int64_t pos_ = 0;  // next position to run
};

}  // namespace duet::notagen
