#include "cloud/stage_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>

#if __has_include(<cuda_runtime_api.h>) && defined(DUET_WITH_CUDA)
#include <cuda_runtime_api.h>
#define DUET_HAVE_CUDART 1
#else
#define DUET_HAVE_CUDART 0
#endif

namespace duet::cloud {

std::vector<int64_t> balance_layers(int64_t num_layers, const std::vector<double>& weights) {
  const size_t n = weights.size();
  std::vector<int64_t> counts(n, 0);
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (n == 0 || num_layers <= 0) return counts;
  // largest-remainder rounding of num_layers * w_i / total
  std::vector<std::pair<double, size_t>> rem;
  int64_t given = 0;
  for (size_t i = 0; i < n; ++i) {
    const double share = total > 0 ? num_layers * weights[i] / total : double(num_layers) / n;
    counts[i] = static_cast<int64_t>(std::floor(share));
    given += counts[i];
    rem.push_back({share - counts[i], i});
  }
  std::sort(rem.begin(), rem.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  for (size_t k = 0; given < num_layers; k = (k + 1) % n, ++given) counts[rem[k].second]++;
  // every stage gets a layer while there are enough: take from the largest
  for (size_t i = 0; i < n && num_layers >= static_cast<int64_t>(n); ++i)
    if (counts[i] == 0) {
      auto big = std::max_element(counts.begin(), counts.end());
      --*big;
      counts[i] = 1;
    }
  return counts;
}

std::vector<int64_t> balance_by_offers(int64_t num_layers, const std::vector<int64_t>& free_bytes) {
  bool known = !free_bytes.empty();
  for (auto f : free_bytes) known = known && f > 0;
  std::vector<double> w;
  for (auto f : free_bytes) w.push_back(known ? double(f) : 1.0);  // equal shares unless every one is known
  return balance_layers(num_layers, w);
}

int64_t device_free_bytes(const std::string& device) {
#if DUET_HAVE_CUDART
  if (device.rfind("cuda", 0) == 0) {
    int idx = 0;
    if (device.size() > 5) idx = std::stoi(device.substr(5));
    int prev = 0;
    cudaGetDevice(&prev);
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(idx) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      cudaSetDevice(prev);
      return static_cast<int64_t>(free_b);
    }
    cudaSetDevice(prev);
  }
#endif
  (void)device;
  return -1;
}

std::vector<StageSpec> make_stage_plan(const std::string& plan, const std::vector<std::string>& devices,
                                       int64_t num_layers, int64_t first_layer) {
  std::vector<StageSpec> stages;
  if (plan.empty() || plan == "auto") {
    if (devices.empty()) throw std::invalid_argument("automatic stage plan: no devices given");
    std::vector<int64_t> free;
    for (const auto& d : devices) free.push_back(device_free_bytes(d));
    auto counts = balance_by_offers(num_layers - first_layer, free);
    int64_t at = first_layer;
    for (size_t i = 0; i < devices.size(); ++i) {
      if (counts[i] == 0) continue;
      stages.push_back({devices[i], "", at, at + counts[i]});
      at += counts[i];
    }
    return stages;
  }
  // explicit: DEVICE=FIRST-LAST[,DEVICE=FIRST-LAST...]; DEVICE@WORKER=auto items share the layers
  // between their neighbours (an equal split here; the front door re-splits by the workers' offers)
  std::stringstream ss(plan);
  std::string item;
  int64_t expect = first_layer;
  std::vector<size_t> pending;  // auto items waiting for the first layer after them
  int explicit_workers = 0;
  auto place_pending = [&](int64_t end, const std::string& at) {
    if (pending.empty()) return;
    const int64_t n = end - expect;
    if (n < static_cast<int64_t>(pending.size()))
      throw std::invalid_argument("stage plan: " + std::to_string(pending.size()) + " auto worker items " + at +
                                  " share " + std::to_string(std::max<int64_t>(n, 0)) +
                                  " layers: each worker needs one at least");
    const auto counts = balance_layers(n, std::vector<double>(pending.size(), 1.0));
    for (size_t i = 0; i < pending.size(); ++i) {
      stages[pending[i]].first = expect;
      stages[pending[i]].last = expect += counts[i];
    }
    pending.clear();
  };
  while (std::getline(ss, item, ',')) {
    const auto eq = item.rfind('=');
    const bool is_auto = eq != std::string::npos && item.substr(eq + 1) == "auto";
    const auto dash = item.find('-', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || (dash == std::string::npos && !is_auto))
      throw std::invalid_argument("stage plan item '" + item +
                                  "' is not DEVICE[@WORKER]=FIRST-LAST (e.g. cuda:0=0-11 or cuda:0@gpu-b=12-23) "
                                  "nor DEVICE@WORKER=auto");
    StageSpec s;
    s.device = item.substr(0, eq);
    if (const auto at = s.device.find('@'); at != std::string::npos) {
      s.worker = s.device.substr(at + 1);
      s.device = s.device.substr(0, at);
      if (s.worker.empty() || s.device.empty() || s.worker.find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != std::string::npos)
        throw std::invalid_argument("stage plan item '" + item + "': a worker name is letters, digits, '-', '_' or '.'");
      for (const auto& prev : stages)
        if (prev.worker == s.worker)
          throw std::invalid_argument("stage plan item '" + item + "': worker '" + s.worker +
                                      "' already runs a stage (one layer range per worker)");
    }
    if (is_auto) {
      if (s.worker.empty())
        throw std::invalid_argument("stage plan item '" + item +
                                    "': only a worker's layers can be left to the front door (DEVICE@WORKER=auto)");
      if (explicit_workers > 0)
        throw std::invalid_argument("stage plan item '" + item +
                                    "': worker items are all auto or all FIRST-LAST, not a mix");
      if (!stages.empty() && stages.back().worker.empty())
        for (const auto& prev : stages)
          if (!prev.worker.empty())
            throw std::invalid_argument("stage plan item '" + item +
                                        "': the worker stages must be consecutive (one chain from the front door and back)");
      s.auto_layers = true;
      pending.push_back(stages.size());
      stages.push_back(s);
      continue;
    }
    if (!s.worker.empty()) {
      if (!pending.empty() || std::any_of(stages.begin(), stages.end(), [](const StageSpec& p) { return p.auto_layers; }))
        throw std::invalid_argument("stage plan item '" + item +
                                    "': worker items are all auto or all FIRST-LAST, not a mix");
      ++explicit_workers;
    }
    try {
      s.first = std::stoll(item.substr(eq + 1, dash - eq - 1));
      s.last = std::stoll(item.substr(dash + 1)) + 1;
    } catch (const std::exception&) {
      throw std::invalid_argument("stage plan item '" + item + "': layer numbers must be integers");
    }
    place_pending(s.first, "before '" + item + "'");
    if (s.first != expect)
      throw std::invalid_argument("stage plan item '" + item + "' starts at layer " + std::to_string(s.first) +
                                  ", expected " + std::to_string(expect) + " (ranges must be in order, without gaps)");
    if (s.last <= s.first) throw std::invalid_argument("stage plan item '" + item + "' has no layers");
    expect = s.last;
    if (!s.worker.empty() && !stages.empty() && stages.back().worker.empty())
      for (const auto& prev : stages)
        if (!prev.worker.empty())
          throw std::invalid_argument("stage plan item '" + item +
                                      "': the worker stages must be consecutive (one chain from the front door and back)");
    stages.push_back(s);
  }
  place_pending(num_layers, "at the end");
  if (expect != num_layers)
    throw std::invalid_argument("stage plan '" + plan + "' covers layers " + std::to_string(first_layer) + "-" +
                                std::to_string(expect - 1) + " but the daemon runs layers " +
                                std::to_string(first_layer) + "-" + std::to_string(num_layers - 1) + " of the model's " +
                                std::to_string(num_layers));
  return stages;
}

}  // namespace duet::cloud
