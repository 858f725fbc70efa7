// A process that loads only the embedding and head must not read block weights: its peak RSS
// growth stays near embedding + head bytes, far under a full load. Measured in separate
// processes (bench/duet-bench-load) so each starts clean.
#include "torch_doctest.hpp"

#include <cstdio>
#include <map>
#include <sstream>

#include "model_writer.hpp"

namespace {

std::map<std::string, double> run_load(const std::string& dir, const std::string& pieces) {
  const std::string cmd = std::string(DUET_BINARY_DIR) + "/bench/duet-bench-load --model " + dir + " --pieces " + pieces;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  REQUIRE(pclose(p) == 0);
  std::map<std::string, double> kv;  // "key=value" pairs
  std::istringstream ss(out);
  std::string tok;
  while (ss >> tok) {
    auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    try {
      kv[tok.substr(0, eq)] = std::stod(tok.substr(eq + 1));
    } catch (const std::exception&) {  // a word, not a figure
    }
  }
  MESSAGE(out);
  return kv;
}

}  // namespace

TEST_CASE("embedding + head load reads no block weight") {
  // blocks ~ 110 MB, embedding + head ~ 8 MB (fp32)
  auto dir = duet::test::write_random_llama(duet::test::make_temp_dir("rss"), 512, 8, 2048, 1536, 8, 8);
  auto edge = run_load(dir, "edge");
  auto full = run_load(dir, "full");
  const double edge_weights = 2.0 * 2048 * 512 * 4 + 512 * 4;
  CHECK(edge["bytes_read"] == doctest::Approx(edge_weights));
  CHECK(full["bytes_read"] > 12 * edge_weights);
  // RSS growth: edge within its weights + 50 % (allocator slack); full at least the blocks
  CHECK(edge["rss_growth_kb"] * 1024 < 1.5 * edge_weights + 4e6);
  CHECK(full["rss_growth_kb"] * 1024 > 0.9 * full["bytes_read"]);
  CHECK(edge["rss_growth_kb"] * 8 < full["rss_growth_kb"]);
}
