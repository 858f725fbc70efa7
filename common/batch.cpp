#include "common/batch.hpp"

#include <stdexcept>
#include <string>

namespace duet {

int64_t StepBatch::tokens() const {
  int64_t t = 0;
  for (const auto& r : rows) t += r.n;
  return t;
}

int64_t StepBatch::outputs() const {
  int64_t t = 0;
  for (const auto& r : rows) t += r.outputs();
  return t;
}

bool StepBatch::all_decode() const {
  if (rows.empty()) return false;
  for (const auto& r : rows)
    if (r.n != 1) return false;
  return true;
}

void StepBatch::validate(int64_t block_size, int64_t num_blocks) const {
  if (rows.empty()) throw std::invalid_argument("a step needs at least one row");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    auto bad = [&](const std::string& what) {
      throw std::invalid_argument("step row " + std::to_string(i) + " (start " + std::to_string(r.start) + ", n " +
                                  std::to_string(r.n) + "): " + what);
    };
    if (!r.table) bad("no block table");
    if (r.n < 1 || r.start < 0) bad("needs n >= 1 and start >= 0");
    if (r.out < -1 || r.out > r.n) bad("out " + std::to_string(r.out) + " is outside [-1, n]");
    if (r.start > r.table->length)
      bad("starts after the sequence's " + std::to_string(r.table->length) + " positions (no gaps allowed)");
    if (static_cast<int64_t>(r.table->blocks.size()) * block_size < r.start + r.n)
      bad("its table covers only " + std::to_string(r.table->blocks.size() * block_size) +
          " positions: ensure() it first");
    if (!r.table->blocks.empty() && (r.table->blocks.back() < 1 || r.table->blocks.back() >= num_blocks))
      bad("block id " + std::to_string(r.table->blocks.back()) + " is outside the pool");
  }
}

}  // namespace duet
