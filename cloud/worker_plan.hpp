#pragma once
// What the front door publishes in its store for each generation of the cluster, and what a stage
// worker reads to learn its layers, its rank and its neighbours. No LibTorch.
//
//   duet-stage-plan 1
//   model <fingerprint>            dtype <fp32|bf16|...>   hidden <H>
//   blocks <num_blocks>            block_size <16>         backend <gloo|nccl>
//   worker <name> <rank> <device> <first> <last> <prev_rank> <next_rank>     (one per worker)
//
// Ranks: the front door is 0, workers 1..W in chain order; prev/next 0 is the front door.
//
// With an automatic split (DEVICE@WORKER=auto) the front door first asks (store key g<N>/ask):
//   duet-stage-ask 1
//   worker <name> <device>                                                    (one per worker)
// and each worker answers g<N>/offer/<name> with "free <bytes>" (what it can give its layers:
// its device's free memory, capped by duet-stage --max-memory-mib); the plan then splits the
// workers' layers in proportion (equal shares unless every offer is known).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace duet::cloud {

struct WorkerPlan {
  struct Entry {
    std::string name, device;
    int64_t first = 0, last = 0;  // layers [first, last)
    int rank = 0, prev = 0, next = 0;
  };
  std::string model;  // the checkpoint's fingerprint
  std::string dtype;
  int64_t hidden = 0, num_blocks = 0, block_size = 0;
  std::string backend = "gloo";  // nccl: every rank's stages (and the front door's end) on CUDA
  std::vector<Entry> workers;
  bool auto_layers = false;  // the front door's own: re-split by offers each generation (not published)

  std::string to_text() const;
  static WorkerPlan parse(const std::string& text);  // throws std::invalid_argument naming the line
  // FNV-1a over to_text(): every step carries it; a worker refuses a step of another plan.
  int64_t fingerprint() const;
  const Entry* find(const std::string& name) const;
  int world_size() const { return static_cast<int>(workers.size()) + 1; }

  std::string ask_text() const;
  // (name, device) per worker; throws std::invalid_argument naming the line
  static std::vector<std::pair<std::string, std::string>> parse_ask(const std::string& text);
};

// A worker's answer to the ask: "free <bytes>" (-1: unknown). Throws std::invalid_argument.
std::string offer_text(int64_t free_bytes);
int64_t parse_offer(const std::string& text);

}  // namespace duet::cloud
