#pragma once
// The music tests' random walkers: the next token drawn uniformly from those the constraint allows,
// EOS (the vocabulary's last id) left out so that the walk goes on.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace duet::music::test {

inline int random_allowed(const std::vector<uint8_t>& ok, std::mt19937& rng) {
  std::vector<int> ids;
  for (size_t i = 0; i + 1 < ok.size(); ++i)
    if (ok[i]) ids.push_back(static_cast<int>(i));
  REQUIRE_FALSE(ids.empty());
  return ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
}

}  // namespace duet::music::test
