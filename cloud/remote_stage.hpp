#pragma once
// The front door's side of its stage workers: the consecutive plan items that name a worker form
// one chain; a step goes to the chain's first worker and its output comes back from the last
// (cloud/step_wire.hpp, over cloud/cluster_link.hpp). The front door serves the c10d store where
// workers meet and forms one "generation" of the cluster at a time: when a worker dies or hangs
// the generation is dropped, every step in it fails with StageUnavailable, and the next one forms
// as soon as every worker has joined again (a restarted worker joins by itself).
//
// Liveness: while no step is in flight a heartbeat travels the chain every `heartbeat`; a step or
// heartbeat unanswered for `step_timeout` loses the generation. A killed worker is seen at once
// (its sockets close); a hung one within heartbeat + step_timeout.
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cloud/worker_plan.hpp"
#include "common/batch.hpp"

namespace duet::cloud {

struct ClusterOptions {
  std::string address;        // the front door's cluster address: the store and Gloo bind here only
  uint16_t store_port = 7710; // 0: any free port (printed)
  bool allow_wildcard_store = false;  // LibTorch < 2.4: accept a store that listens on every interface
  std::chrono::milliseconds step_timeout{10000};
  std::chrono::milliseconds heartbeat{1000};
  std::string front_device = "cpu";  // the front door's end of the link when it runs no stage before the workers
};

// The workers are missing (not joined yet, lost, re-forming): the step did not run.
class StageUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RemoteWorker {
  std::string name, device, host = "-";  // host: the address it joined from
  int64_t first = 0, last = 0;
  int64_t weight_bytes = -1, kv_bytes_per_position = -1;  // -1 until it joined
};

class RemoteChain {
 public:
  RemoteChain(WorkerPlan plan, ClusterOptions opts);  // serves the store; forms generation 1 in the background
  ~RemoteChain();
  RemoteChain(const RemoteChain&) = delete;
  RemoteChain& operator=(const RemoteChain&) = delete;

  uint16_t store_port() const;
  int64_t plan_fingerprint() const;

  // Sends step `step` (x [T, H], any device) into the chain. Steps are collected in the order
  // they were submitted. Throws StageUnavailable when the cluster is not formed or breaks.
  void submit(int64_t step, const StepBatch& batch, const torch::Tensor& x);
  // The chain's output for `step` [T, H] on the CPU. Throws StageUnavailable (the generation is
  // lost) or std::runtime_error (a worker refused this step; the cluster stays up).
  torch::Tensor collect(int64_t step);

  bool ready() const;
  // Empty when ready; else a sentence naming the missing workers.
  std::string unavailable_reason() const;
  // Counts formed generations: a change means every worker's KV pool may have been lost, so
  // sessions from before must replay (the engine closes them; edges resume).
  uint64_t generation() const;
  bool wait_ready(std::chrono::milliseconds limit) const;
  std::vector<RemoteWorker> workers() const;
  const char* backend() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::cloud
