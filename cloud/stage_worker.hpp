#pragma once
// duet-stage: a worker that runs one layer range of the model for a front door (duet-cloud) on
// another host. It meets the front door in the front door's c10d store, learns its layers, rank
// and neighbours from the plan published there, loads only those blocks, and then runs every step
// it receives on its own KV pool (grown to the highest block id it is sent) and passes the output
// on. It holds no session state: each step carries its rows' block ids (cloud/step_wire.hpp).
//
// When its links break (a neighbour died, the front door restarted or re-formed the cluster) it
// goes back to the store and joins the next generation.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace duet::cloud {

struct StageWorkerOptions {
  std::string model_path;
  std::string name;        // the name the front door's plan gives this worker ("cpu@NAME=0-11")
  std::string front_host;  // the front door's cluster address
  uint16_t front_port = 0; // its store port
  std::string address;     // this machine's cluster address: Gloo binds here
  std::chrono::milliseconds step_timeout{10000};  // a neighbour silent this long mid-step is lost
  std::chrono::milliseconds idle_timeout{10000};  // no step or heartbeat this long: the front door is lost
  int64_t max_memory_bytes = 0;  // offered at most to an automatic split (0: the device's free memory)
};

// What this worker offers an automatic split for `device`: its free memory (a GPU's, or the
// host's available memory for "cpu"), capped by max_memory_bytes; -1 when unknown.
int64_t stage_offer_bytes(const std::string& device, int64_t max_memory_bytes);

// Exit status of run(): 0 stopped, 2 refused (another model, not in the plan), 1 other errors.
int run_stage_worker(const StageWorkerOptions& opts, const std::atomic<bool>& stop);

}  // namespace duet::cloud
