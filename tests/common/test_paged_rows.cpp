// The CUDA kernels' view of a step (AttentionInput::paged: per token a block table, a first key
// and a key count) names exactly the keys that the LibTorch path's gathered slots and masks let
// through, for decode rows, prefill spans, sliding windows and padded graph buckets. Checked on
// the CPU by walking the tables as common/cuda/paged_attention.cu does.
#include "tests/common/torch_doctest.hpp"

#include <vector>

#include "common/attention.hpp"

using namespace duet;

namespace {

constexpr int64_t bs = kKvBlockSize;

// As the kernel: keys j in [max(0, len - window), len) at position offset + j of the table.
std::vector<int64_t> walked(const AttentionInput& in, int64_t t, int64_t window) {
  const auto& p = in.paged;
  const int64_t row = p.table_index.defined() ? p.table_index[t].item<int64_t>() : t;
  const int64_t len = p.key_len[t].item<int64_t>(), off = p.key_offset[t].item<int64_t>();
  REQUIRE(len <= p.max_keys);
  std::vector<int64_t> slots;
  for (int64_t j = window > 0 && len > window ? len - window : 0; j < len; ++j) {
    const int64_t kp = off + j;
    slots.push_back(p.tables[row][kp / bs].item<int64_t>() * bs + kp % bs);
  }
  return slots;
}

// As the LibTorch path: the gathered slots whose mask is true (and inside a layer window, whose
// keys then start at position 0).
std::vector<int64_t> masked(const torch::Tensor& slots, const torch::Tensor& mask, int64_t first_key, int64_t qpos,
                            int64_t window) {
  std::vector<int64_t> out;
  for (int64_t c = 0; c < slots.size(0); ++c)
    if (mask[c].item<bool>() && (window == 0 || first_key + c > qpos - window)) out.push_back(slots[c].item<int64_t>());
  return out;
}

void check_step(const StepBatch& batch, int64_t step_window, int64_t layer_window, DecodePadding pad = {}) {
  auto in = build_attention_input(batch, bs, step_window, c10::Device(c10::kCPU), pad);
  // a step built with a window has it in its masks; a layer window on top is masked apart
  const int64_t extra = step_window > 0 ? 0 : layer_window;
  REQUIRE(in.paged.key_len.size(0) == in.tokens);
  for (int64_t b = 0; b < in.decode_rows; ++b) {
    const int64_t t = in.decode_only ? b : in.decode_tokens[b].item<int64_t>();
    CAPTURE(t);
    const int64_t qpos = in.positions[t].item<int64_t>();
    CHECK(walked(in, t, layer_window) == masked(in.decode_slots[b], in.decode_mask[b], 0, qpos, extra));
  }
  for (const auto& sp : in.spans)
    for (int64_t i = 0; i < sp.n; ++i) {
      CAPTURE(sp.token + i);
      CHECK(walked(in, sp.token + i, layer_window) ==
            masked(sp.slots, sp.mask[i], sp.first_key, sp.start + i, extra));
    }
}

}  // namespace

TEST_CASE("paged rows name the keys the gathered slots and masks let through") {
  // tables with scattered block ids, as a pool in use has them
  std::vector<BlockTable> t(6);
  int32_t next = 3;
  for (auto& tb : t) {
    for (int i = 0; i < 5; ++i) tb.blocks.push_back(next += 7);
    tb.length = 5 * bs;
  }
  StepBatch mixed;
  mixed.rows = {{&t[0], 0, 1}, {&t[1], 15, 1}, {&t[2], 16, 1}, {&t[3], 39, 1}, {&t[4], 0, 7}, {&t[5], 20, 13}};
  SUBCASE("no window") { check_step(mixed, 0, 0); }
  SUBCASE("a layer window narrower than the step's (Gemma's local layers)") { check_step(mixed, 0, 5); }
  SUBCASE("the step's own window") { check_step(mixed, 8, 8); }
  StepBatch decode;
  decode.rows = {{&t[0], 0, 1}, {&t[1], 15, 1}, {&t[2], 16, 1}, {&t[3], 70, 1}};
  SUBCASE("all decode") { check_step(decode, 0, 0); }
  SUBCASE("all decode, windows") {
    check_step(decode, 0, 9);
    check_step(decode, 20, 20);
  }
  SUBCASE("a padded bucket: padded rows see one key, in the scratch block") {
    check_step(decode, 0, 0, {8, 128});
    auto in = build_attention_input(decode, bs, 0, c10::Device(c10::kCPU), {8, 128});
    for (int64_t r = 4; r < 8; ++r) CHECK(walked(in, r, 0) == std::vector<int64_t>{0});
  }
}
