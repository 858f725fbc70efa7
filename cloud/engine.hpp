#pragma once
// The daemon's engine: one thread that owns the sessions, the KV pool's allocator, the scheduler
// and the pipeline, and repeats  admit -> schedule -> run -> reply  (vLLM's EngineCore.step).
// The socket thread (cloud/server.cpp) submits decoded requests and sends the replies, so
// receiving and replying never wait behind GPU work.
//
// A failed step (an exception from the model, e.g. out of memory) fails every forward in it with
// `internal`; their sessions keep the length they had before the step (positions the step wrote
// are past that length and are overwritten by the next forward), so the edge may retry.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloud/admission.hpp"
#include "cloud/engine_messages.hpp"
#include "cloud/scheduler.hpp"
#include "cloud/session_table.hpp"

namespace duet::cloud {

class Pipeline;

struct EngineOptions {
  SessionLimits sessions;
  SchedulerLimits scheduler;
  AdmissionContract contract;
  uint32_t max_waiting_per_session = 8;  // forwards of one session queued behind the running one
  // Edges answer each reply with their next forward a round trip later. A step started the moment
  // the first of them is back would run a few rows and make the rest wait a whole step: while
  // fewer decode rows wait than sessions decoded in the last 50 ms, wait up to this long (from the
  // oldest waiting forward's arrival) for the others. 0: never wait.
  std::chrono::microseconds batch_wait{0};
};

// A snapshot for metrics and logs.
struct EngineStats {
  uint64_t sessions_opened = 0, sessions_closed = 0, sessions_expired = 0;
  std::map<std::string, uint64_t> refused;  // by error code name
  uint64_t steps = 0, rows_total = 0, decode_tokens = 0, prefill_tokens = 0, forwards_served = 0;
  std::vector<uint64_t> batch_rows_hist;  // steps by rows: <=1, <=2, <=4, ... <=128, more
  uint64_t sessions_open = 0, forwards_waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_free = 0, kv_block_size = 0;
  std::map<std::string, OwnerUsage> per_owner;
  std::map<std::string, uint64_t> tokens_per_owner;
  double step_seconds_total = 0;
  // where a step's time goes: inputs gathered and copied, the forward (to the host copy of its
  // output, so it includes waiting for the device), replies built
  double step_prep_seconds = 0, step_forward_seconds = 0, step_reply_seconds = 0;
};

class Engine {
 public:
  // `on_replies` is called on the engine thread when replies are ready (wake the socket thread).
  Engine(Pipeline& pipeline, EngineOptions options, std::function<void()> on_replies);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void submit(EngineRequest request);  // any thread
  std::vector<EngineReply> take_replies();  // any thread
  // The engine loop; returns when `stop` is set, after answering what waits with shutting_down
  // and closing every session.
  void run(const std::atomic<bool>& stop);
  EngineStats stats() const;  // any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::cloud
