#pragma once
// Which layers run on which device. Explicit ("cpu=0-1,cpu=2-2", inclusive ranges, in order,
// covering every layer once) or automatic: layers split over the devices in proportion to each
// one's free memory (equal shares on CPU). An explicit item may name a stage worker on another
// host: "cuda:0@gpu-b=12-23" runs layers 12-23 on cuda:0 of the worker that joins as "gpu-b"
// (duet-stage --name gpu-b; docs/STAGES.md). The remote items must be consecutive. "cuda:0@gpu-b=auto,
// cuda:0@gpu-c=auto" leaves the split to the front door: the layers between the explicit items
// go to the workers in proportion to the memory each offers when it joins (all worker items auto,
// or none).
#include <cstdint>
#include <string>
#include <vector>

namespace duet::cloud {

struct StageSpec {
  std::string device;
  std::string worker;  // empty: in the front door's process; else the stage worker's name
  int64_t first = 0;  // layers [first, last)
  int64_t last = 0;
  bool auto_layers = false;  // a worker's range left to its offer (first/last: an equal split until then)
};

// `plan` is "auto" or an explicit list of layers [first_layer, num_layers) (the edges run the
// layers before first_layer, --edge-blocks); throws std::invalid_argument naming what was wrong.
std::vector<StageSpec> make_stage_plan(const std::string& plan, const std::vector<std::string>& devices,
                                       int64_t num_layers, int64_t first_layer = 0);
// Layer counts proportional to weights (free bytes per device), each device at least one layer
// while layers last. Exposed for tests.
std::vector<int64_t> balance_layers(int64_t num_layers, const std::vector<double>& weights);
// balance_layers over free-memory offers: equal shares unless every offer is known (> 0).
std::vector<int64_t> balance_by_offers(int64_t num_layers, const std::vector<int64_t>& free_bytes);
// Free memory of a device in bytes, or -1 when unknown (CPU, or no CUDA runtime in this build).
int64_t device_free_bytes(const std::string& device);

// One stage of the plan as the daemon sees it now (Pipeline::stage_rows()).
struct StageRow {
  std::string worker = "front door", host = "local", device;
  int64_t first = 0, last = 0;     // layers [first, last]
  int64_t weight_bytes = -1;       // -1: a worker that has not joined yet
  int64_t kv_bytes = -1;           // its KV pool
};

}  // namespace duet::cloud
