// duet-bench-load: loads pieces of a checkpoint and prints what it cost in file bytes read and
// resident memory, so an edge-only load can be compared with a full one.
//   duet-bench-load --model DIR --pieces edge|blocks|full [--dtype fp32]
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "common/backbone.hpp"
#include "common/dtype.hpp"
#include "common/generator.hpp"

namespace {
long status_kb(const char* key) {  // VmRSS / VmHWM from /proc/self/status
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size()));
  return -1;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measures the memory cost of loading pieces of a checkpoint"};
  std::string model, pieces = "full", dtype = "fp32";
  app.add_option("--model", model, "HF model folder")->required();
  app.add_option("--pieces", pieces, "edge | blocks | full")->check(CLI::IsMember({"edge", "blocks", "full"}));
  app.add_option("--dtype", dtype, "fp32 | fp16 | bf16");
  CLI11_PARSE(app, argc, argv);
  try {
    torch::NoGradGuard ng;
    duet::Checkpoint ck(model);
    duet::LoadOptions o;
    o.dtype = duet::parse_dtype(dtype);
    const long before = status_kb("VmRSS:");
    duet::EdgePieces edge;
    std::unique_ptr<duet::LocalBackbone> bb;
    if (pieces != "blocks") edge = duet::EdgePieces::load(ck, o);
    if (pieces != "edge") bb = std::make_unique<duet::LocalBackbone>(ck, o, 16);
    const long peak = status_kb("VmHWM:");
    std::printf("pieces=%s bytes_read=%llu rss_before_kb=%ld peak_rss_kb=%ld rss_growth_kb=%ld\n", pieces.c_str(),
                static_cast<unsigned long long>(ck.bytes_read()), before, peak, peak - before);
  } catch (const std::exception& e) {
    std::cerr << "duet-bench-load: " << e.what() << "\n";
    return 1;
  }
}
