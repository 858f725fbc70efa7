// The one percentile of duet's reports (common/percentile.hpp): interpolated between ranks, the
// same answer wherever it is used (duet-edge's --json, NotaGen's summary, the benchmarks).
#include <doctest/doctest.h>

#include "common/percentile.hpp"

using duet::percentile;

TEST_CASE("percentile: linear between the nearest ranks, clamped q, a chosen value when empty") {
  CHECK(percentile({3, 1, 2, 4}, 0.5) == doctest::Approx(2.5));  // the mean of the middle two (was 3 in duet-edge)
  CHECK(percentile({5}, 0.99) == 5);
  CHECK(percentile({10, 20, 30, 40, 50}, 0.0) == 10);
  CHECK(percentile({10, 20, 30, 40, 50}, 1.0) == 50);
  CHECK(percentile({10, 20, 30, 40, 50}, 0.25) == doctest::Approx(20));
  CHECK(percentile({10, 20, 30, 40, 50}, 0.9) == doctest::Approx(46));
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);  // unsorted input
  CHECK(percentile(hundred, 0.99) == doctest::Approx(99.01));
  CHECK(percentile(hundred, 1.5) == 100);  // q past 1 is 1
  CHECK(percentile(hundred, -1) == 1);
  CHECK(percentile({}, 0.5) == 0);
  CHECK(percentile({}, 0.5, -1) == -1);  // duet_load's "none reported"
}
