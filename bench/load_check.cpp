#include "bench/load_check.hpp"

#include <torch/torch.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "common/wire/tensor_frames.hpp"

namespace duet::bench {

torch::Tensor rows_from_bytes(const std::vector<std::byte>& bytes, int64_t hidden, protocol::WireDtype wire,
                              c10::Device device, c10::ScalarType dtype) {
  const int64_t row = hidden * int64_t(protocol::element_size(wire));
  if (row == 0 || int64_t(bytes.size()) % row != 0)
    throw std::invalid_argument("returned hidden bytes (" + std::to_string(bytes.size()) + ") are not whole rows of " +
                                std::to_string(row));
  auto t = torch::empty({int64_t(bytes.size()) / row, hidden}, torch::TensorOptions().dtype(to_scalar_type(wire)));
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t.to(device, dtype);  // the same conversion frame_to_tensor does for the real edge
}

RowCheck check_rows(const EdgePieces& edge, const torch::Tensor& rows, const std::vector<int32_t>& expected,
                    double tolerance, const torch::Tensor& reference_rows) {
  torch::NoGradGuard ng;
  RowCheck c;
  c.rows = rows.size(0);
  if (c.rows != int64_t(expected.size()))
    throw std::invalid_argument("check: " + std::to_string(c.rows) + " rows for " + std::to_string(expected.size()) +
                                " expected tokens");
  const auto logits = edge.logits(rows);  // fp32 [n, vocab]
  const auto want = torch::tensor(std::vector<int64_t>(expected.begin(), expected.end()), torch::kLong).to(logits.device());
  const auto best = std::get<0>(logits.max(-1));  // [n]
  // >= 0; 0 where the expected token ties with the max
  const auto gap = (best - logits.gather(1, want.unsqueeze(1)).squeeze(1)).to(torch::kCPU, torch::kFloat);
  const auto got = logits.argmax(-1).cpu();
  const auto g_got = got.accessor<int64_t, 1>();
  const auto g_gap = gap.accessor<float, 1>();
  for (int64_t i = 0; i < c.rows; ++i) {
    if (g_got[i] == expected[size_t(i)]) continue;
    ++c.mismatches;
    if (c.first_mismatch < 0) c.first_mismatch = i;
    const double g = g_gap[i];
    c.worst_gap = std::max(c.worst_gap, g);
    if (g > tolerance) ++c.beyond_tolerance;
  }
  if (reference_rows.defined())
    c.max_abs_diff = (rows.to(torch::kFloat) - reference_rows.to(rows.device(), torch::kFloat)).abs().max().item<double>();
  return c;
}

}  // namespace duet::bench
