#pragma once
// duet-load's check: the edge's final norm + LM head over every hidden row a session got back,
// in one batch per session, and argmax compared with the reference's tokens.
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/generator.hpp"
#include "protocol/dtype.hpp"

namespace duet::bench {

struct RowCheck {
  int64_t rows = 0;
  int64_t mismatches = 0;      // argmax != expected token
  int64_t first_mismatch = -1; // row index (0 = the prefill's last position)
  int64_t beyond_tolerance = 0;  // mismatches whose expected token's logit is more than tolerance below the max
  double worst_gap = 0;        // max over mismatches of (max logit - expected token's logit)
  double max_abs_diff = -1;    // vs the reference's hidden rows, when given
};

// rows: [n, hidden] on the edge device in the edge dtype; expected: n token ids.
RowCheck check_rows(const EdgePieces& edge, const torch::Tensor& rows, const std::vector<int32_t>& expected,
                    double tolerance, const torch::Tensor& reference_rows = {});

// Raw wire bytes ([n, hidden] in `wire`) -> tensor on `device` in `dtype`, as the edge decodes replies.
torch::Tensor rows_from_bytes(const std::vector<std::byte>& bytes, int64_t hidden, protocol::WireDtype wire,
                              c10::Device device, c10::ScalarType dtype);

}  // namespace duet::bench
