#pragma once
// The engine's state and its parts, shared by the files that implement it (private to cloud/):
//   engine_admit.cpp  requests in: opens, closes, forwards queued per session, connections gone
//   engine_step.cpp   a step run (compute only, returns a StepOutcome) and applied (one owner)
//   engine.cpp        the loop, the stats and replies handed to the socket thread, the public API
#include <torch/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "cloud/decoder_turnaround.hpp"
#include "cloud/engine.hpp"
#include "cloud/pipeline.hpp"
#include "common/spin_window.hpp"
#include "protocol/errors.hpp"

namespace duet::cloud {

namespace engine_detail {

namespace p = protocol;

// An admitted forward: its input on the host until its step, and what it returns so far.
struct Job {
  uint64_t session = 0;
  std::string peer, owner;
  uint64_t request_id = 0;
  p::WireDtype wire = p::WireDtype::f32;
  p::OutputMode output = p::OutputMode::last;
  int64_t start = 0, n = 0;
  torch::Tensor x;                 // [n, H]
  std::vector<torch::Tensor> out;  // host rows to return, in order
  Clock::time_point received;
  Ticket ticket;  // its request bytes, given back when the job goes
  // per-hop telemetry (Result.timing): when its first step began, each stage's time in its steps
  std::optional<Clock::time_point> first_step;
  std::vector<std::chrono::nanoseconds> stage_time;
};

// What running a step produced: data only. Nothing about sessions or jobs changes until
// Engine::Impl::apply() takes it.
struct StepOutcome {
  std::vector<PlannedRow> rows;
  bool ok = false;
  std::string error;                              // when !ok
  bool cancelled = false;                         // !ok because the daemon is stopping
  bool stage_lost = false;                        // !ok because a stage worker went away
  std::vector<int64_t> outputs;                   // per row: its positions in y (0, 1 or all)
  torch::Tensor y;                                // [sum of outputs, H] on the host, rows in order (when ok)
  std::vector<std::chrono::nanoseconds> stage_time;
  Clock::time_point started;
  double prep_seconds = 0, forward_seconds = 0;
  int64_t decode_rows = 0, prefill_tokens = 0;
};

}  // namespace engine_detail

struct Engine::Impl {
  using Job = engine_detail::Job;
  using StepOutcome = engine_detail::StepOutcome;
  Pipeline& pipeline;
  EngineOptions opts;
  std::function<void()> on_replies;
  SessionTable sessions;
  Scheduler scheduler;
  Intake intake;

  std::mutex in_mu;
  std::condition_variable in_cv;
  std::deque<EngineRequest> inbox;
  std::vector<std::string> gone_peers;  // connections closed, not yet handled
  std::atomic<uint64_t> posted{0};      // inbox and gone_peers pushes, counted under in_mu: spun on
  std::mutex out_mu;
  std::vector<EngineReply> outbox;
  mutable std::mutex stats_mu;
  EngineStats published;

  // engine thread only
  EngineStats st;
  SpinWindow spin;  // opened by every step and every request taken up
  std::map<uint64_t, Job> jobs;
  std::map<uint64_t, uint64_t> running_of;  // session -> its job (admitted, in the scheduler)
  std::map<uint64_t, std::deque<EngineRequest>> deferred;  // session -> forwards behind its job
  uint64_t next_job = 1;
  std::vector<EngineReply> pending;  // replies of this iteration
  DecoderTurnaround decoders;  // when each decoding session's next forward is due

  Impl(Pipeline& pl, EngineOptions o, std::function<void()> cb)
      : pipeline(pl), opts(std::move(o)), on_replies(std::move(cb)),
        sessions(pl.allocator(), opts.sessions), scheduler(opts.scheduler), intake(opts.intake) {
    st.batch_rows_hist.assign(9, 0);
    spin = SpinWindow(opts.spin);
    st.stages = pl.stage_rows();
    max_in_flight = opts.steps_in_flight > 0 ? opts.steps_in_flight : pl.remote() ? pl.stages().size() : 1;
    published = st;  // /metrics may be read before the loop's first turn
  }

  void reply(const std::string& peer, uint64_t rid, protocol::MessageBody body, std::vector<zmq::message_t> t = {}) {
    pending.push_back(EngineReply{peer, rid, std::move(body), std::move(t), Clock::now()});
  }
  void refuse(const std::string& peer, uint64_t rid, protocol::ErrorCode code, const std::string& msg) {
    ++st.refused[std::string(protocol::to_string(code))];
    protocol::Error e;
    e.code = code;
    e.message = msg.size() > protocol::kMaxErrorMessageChars ? msg.substr(0, protocol::kMaxErrorMessageChars) : msg;
    reply(peer, rid, e);
  }

  // ---- requests in (engine_admit.cpp)
  // Opens, closes, and forwards: a forward starts when its session has none running, else waits
  // behind it (bounded). Every refusal is answered here.
  void admit(EngineRequest&& r);
  // Admission checks (throw, changing nothing), then the job goes to the scheduler.
  void start_forward(EngineRequest&& r);
  // The session's forward is done (replied, refused or dropped): the next one queued behind it
  // is admitted now, and each refused one is answered, until one starts or none is left. The one
  // place a session's queue moves on.
  void admit_next(uint64_t session);
  void finish(uint64_t job);
  // Sessions whose last single-position reply is at most `window` old: with the default, the rows
  // the next step should carry; with a longer one, whether anyone is mid-generation (a decode may
  // arrive during the next step, so its prefill is time-capped even over a slow link).
  static constexpr std::chrono::milliseconds kDecoderMemory = DecoderTurnaround::kMemory;
  size_t active_decoders(Clock::time_point now, std::chrono::milliseconds window = std::chrono::milliseconds(50)) {
    return decoders.recent(now, window);
  }
  // The session goes away: its waiting forward and those behind it are answered, not run.
  void end_session(uint64_t session, const std::string& why);
  // Every session ends (their waiting forwards answered with unknown_session and `why`): after a
  // stage worker's loss or restart, their KV is gone from its pool.
  void end_all_sessions(const std::string& why);
  uint64_t workers_generation = 0;  // the stage workers' generation the sessions were opened in
  // A connection closed: what it queued and has not run is dropped unanswered (nobody reads it),
  // and the forwards queued behind them by other connections of the key go on.
  void drop_peer(const std::string& peer);

  // ---- a step: launched and landed (compute only), then applied: the one owner of what a step
  // changes (engine_step.cpp). With stage workers, up to max_in_flight steps of disjoint sessions
  // are in flight at once (stages pipelined); otherwise one runs whole at a time.
  struct InFlight {
    int64_t ticket = 0;  // Pipeline::submit's; 0: ran whole in launch()
    StepOutcome o;
  };
  std::deque<InFlight> in_flight;
  size_t max_in_flight = 1;
  Clock::time_point last_landed{};  // when the last step that ran landed
  void launch(std::vector<PlannedRow> rows);
  StepOutcome land();  // the oldest step in flight, waited for
  void apply(StepOutcome&& o);
  void apply_failure(const StepOutcome& o);
  void apply_stage_loss(const StepOutcome& o);
  void send_result(Job& j);

  // ---- the loop (engine.cpp)
  // Stats first, then the replies: a client that reads /metrics after its reply (e.g. after its
  // close_session) sees the state that reply left.
  void publish();
  void expire(Clock::time_point now);
  // What the socket thread handed over: closed connections first (their queued work is not
  // admitted), then requests in arrival order.
  void take_inbox(std::unique_lock<std::mutex>& lock);
  // Until something is posted, stop is set or the deadline passes; while the spin window is open
  // it polls `posted` instead of sleeping. Holds `lock` on return.
  void wait_for_input(std::unique_lock<std::mutex>& lock, Clock::time_point deadline, const std::atomic<bool>& stop);
  // The stage workers re-formed: the sessions opened on the old ones end (their KV is gone).
  void follow_workers();
  // The batching window (EngineOptions::batch_wait): admits what arrives while sessions replied to
  // are predicted back within the window from now, while that costs the waiting decodes less than
  // a missed step costs those due.
  void gather_decoders(const std::atomic<bool>& stop);
  void run(const std::atomic<bool>& stop);
  // Stopping: what waits is answered, every session closed.
  void shut_down();
};

}  // namespace duet::cloud
