#pragma once
// The daemon's engine: one thread that owns the sessions, the KV pool's allocator, the scheduler
// and the pipeline, and repeats  admit -> schedule -> run -> apply -> reply  (vLLM's EngineCore:
// schedule(), execute_model(), update_from_output()). Running a step only computes: it returns
// its outcome as data, and one function applies it (session lengths through the SessionTable,
// replies, the next forward of each session). The socket thread (cloud/server.cpp) submits
// decoded requests and sends the replies, so receiving and replying never wait behind GPU work.
//
// Every forward gets exactly one reply (or none when its connection is gone): after any
// completion or refusal the session's next queued forward is admitted or refused at once, in
// order. A failed step (an exception from the model, e.g. out of memory) fails every forward in
// it with `internal`; their sessions keep the length they had before the step (positions the step
// wrote are past that length and are overwritten by the next forward), so the edge may retry.
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
#include "cloud/intake.hpp"
#include "cloud/scheduler.hpp"
#include "cloud/session_table.hpp"
#include "cloud/stage_plan.hpp"

namespace duet::cloud {

class Pipeline;

struct EngineOptions {
  SessionLimits sessions;
  SchedulerLimits scheduler;
  AdmissionContract contract;
  uint32_t max_waiting_per_session = 8;  // forwards of one session queued behind the running one
  // Edges answer each reply with their next forward a round trip later. A step started the moment
  // the first of them is back would run a few rows and make the rest wait a whole step: before a
  // step, wait up to this long from now for the sessions predicted back within it, while that is
  // worth it (Engine::Impl::gather_decoders). 0: never wait.
  std::chrono::microseconds batch_wait{0};
  // Or, when longer, this fraction of a decode-only step as the scheduler measures it (0: off):
  // waiting a little for sessions whose replies are still travelling beats running half a batch
  // when a step costs about the same at any row count.
  double batch_wait_step_fraction = 0.5;
  IntakeLimits intake;  // request bytes queued at most, per key and in all
  // Steps in flight at once, of disjoint sessions (stages pipelined: stage 1 runs step k+1 while
  // stage 2 runs step k). 0: one per stage when stage workers run some stages, else 1.
  size_t steps_in_flight = 0;
  // After a step or a request, the engine thread polls its inbox without sleeping this long
  // (common/spin_window.hpp). 0: it sleeps on its condition variable at once.
  std::chrono::microseconds spin{0};
};

// A snapshot for metrics and logs.
struct EngineStats {
  uint64_t sessions_opened = 0, sessions_closed = 0, sessions_expired = 0;
  std::map<std::string, uint64_t> refused;  // by error code name
  uint64_t steps = 0, rows_total = 0, decode_tokens = 0, prefill_tokens = 0, forwards_served = 0;
  std::vector<uint64_t> batch_rows_hist;  // steps by rows: <=1, <=2, <=4, ... <=128, more
  uint64_t sessions_open = 0, forwards_waiting = 0;
  uint64_t forwards_dropped_gone = 0;  // queued forwards dropped because their connection closed
  uint64_t queued_bytes = 0;           // request bytes held (cloud/intake.hpp)
  uint64_t live_sessions_total = 0;    // per step: sessions that decoded in the last 50 ms (rows_total / this: fill)
  double decode_step_seconds = 0, prefill_token_seconds = 0, prefill_overhead_seconds = 0;  // the scheduler's estimates
  int64_t kv_blocks_used = 0, kv_blocks_free = 0, kv_block_size = 0;
  std::map<std::string, OwnerUsage> per_owner;
  std::map<std::string, uint64_t> tokens_per_owner;
  // the hand-over from the socket thread: its receipt of a request to the engine taking it up
  // (with a step running, the rest of that step too)
  double handoff_in_seconds = 0;
  uint64_t handoffs_in = 0;
  double step_seconds_total = 0;
  // where a step's time goes: inputs gathered and copied, the forward (to the host copy of its
  // output, so it includes waiting for the device), replies built
  double step_prep_seconds = 0, step_forward_seconds = 0, step_reply_seconds = 0;
  // the batching window: steps that waited for sessions predicted back, and how long in all
  uint64_t gathers = 0;
  uint64_t steps_pipelined = 0;  // steps launched while another was in flight (stages pipelined)
  double gather_seconds = 0;
  // decoding sessions' turnarounds (a reply to their next forward), by DecoderTurnaround::kBucketsMs
  std::vector<uint64_t> turnaround_hist;
  std::vector<StageRow> stages;  // the plan: where each layer range runs, its weights and KV
};

class Engine {
 public:
  // `on_replies` is called on the engine thread when replies are ready (wake the socket thread).
  Engine(Pipeline& pipeline, EngineOptions options, std::function<void()> on_replies);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Any thread. Checks the request against the intake (cloud/intake.hpp) and queues it; throws
  // protocol::ProtocolError (unknown_session, server_busy) without queueing anything.
  void submit(EngineRequest request);
  // Any thread: the connection `peer` closed. Its forwards that have not run yet are dropped (no
  // one would read their replies); its sessions stay until they are closed or expire.
  void connection_closed(const std::string& peer);
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
