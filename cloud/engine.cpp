#include "cloud/engine.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "cloud/pipeline.hpp"
#include "common/batch.hpp"
#include "common/step_cancel.hpp"
#include "common/wire/tensor_frames.hpp"
#include "protocol/errors.hpp"

namespace duet::cloud {

namespace p = protocol;
using p::ErrorCode;
using p::ProtocolError;

namespace {

// An admitted forward: its input on the first stage's device, and what it returns so far.
struct Job {
  uint64_t session = 0;
  std::string peer, owner;
  uint64_t request_id = 0;
  p::WireDtype wire = p::WireDtype::f32;
  p::OutputMode output = p::OutputMode::last;
  int64_t start = 0, n = 0;
  torch::Tensor x;                // [n, H]
  std::vector<torch::Tensor> out;  // host rows to return, in order
  Clock::time_point received;
  // per-hop telemetry (Result.timing): when its first step began, each stage's time in its steps
  std::optional<Clock::time_point> first_step;
  std::vector<std::chrono::nanoseconds> stage_time;
};

// Result.timing of a finished job. Queue and stage intervals lie inside [received, reply], apart,
// and each is truncated to microseconds like cloud_compute_us: the parts never exceed the whole.
p::ResultTiming timing_of(const Job& j) {
  using std::chrono::duration_cast;
  using us = std::chrono::microseconds;
  p::ResultTiming t;
  t.queue_us = static_cast<uint64_t>(duration_cast<us>(j.first_step.value_or(j.received) - j.received).count());
  for (auto ns : j.stage_time) t.stage_us.push_back(static_cast<uint64_t>(duration_cast<us>(ns).count()));
  return t;
}

size_t hist_bucket(size_t rows) {
  size_t b = 0;
  for (size_t cap = 1; cap < rows && b < 8; cap *= 2) ++b;
  return b;  // 0: 1 row, 1: 2, 2: <=4, ... 7: <=128, 8: more
}

}  // namespace

struct Engine::Impl {
  Pipeline& pipeline;
  EngineOptions opts;
  std::function<void()> on_replies;
  SessionTable sessions;
  Scheduler scheduler;

  std::mutex in_mu;
  std::condition_variable in_cv;
  std::deque<EngineRequest> inbox;
  std::mutex out_mu;
  std::vector<EngineReply> outbox;
  mutable std::mutex stats_mu;
  EngineStats published;

  // engine thread only
  EngineStats st;
  std::map<uint64_t, Job> jobs;
  std::map<uint64_t, uint64_t> running_of;  // session -> its job
  std::map<uint64_t, std::deque<EngineRequest>> deferred;  // session -> forwards behind its job
  uint64_t next_job = 1;
  std::vector<EngineReply> pending;  // replies of this iteration
  std::map<uint64_t, Clock::time_point> recent_decoders;  // session -> its last single-position reply

  Impl(Pipeline& pl, EngineOptions o, std::function<void()> cb)
      : pipeline(pl), opts(std::move(o)), on_replies(std::move(cb)),
        sessions(pl.allocator(), opts.sessions), scheduler(opts.scheduler) {
    st.batch_rows_hist.assign(9, 0);
  }

  void reply(const std::string& peer, uint64_t rid, p::MessageBody body, std::vector<zmq::message_t> t = {}) {
    pending.push_back(EngineReply{peer, rid, std::move(body), std::move(t)});
  }
  void refuse(const std::string& peer, uint64_t rid, ErrorCode code, const std::string& msg) {
    ++st.refused[std::string(p::to_string(code))];
    p::Error e;
    e.code = code;
    e.message = msg.size() > p::kMaxErrorMessageChars ? msg.substr(0, p::kMaxErrorMessageChars) : msg;
    reply(peer, rid, e);
  }

  // ---- admit ----------------------------------------------------------------------------------

  void admit(EngineRequest&& r) {
    try {
      if (auto* m = std::get_if<p::OpenSession>(&r.body)) {
        Session& s = sessions.open(r.owner, m->max_positions);
        ++st.sessions_opened;
        spdlog::info("session {} opened for '{}' ({} positions; {} open)", s.id, p::printable(r.owner),
                     s.max_positions, sessions.size());
        reply(r.peer, r.request_id, p::SessionOpened{s.id, s.max_positions});
      } else if (auto* c = std::get_if<p::CloseSession>(&r.body)) {
        sessions.get(r.owner, c->session_id);  // owner check first: another key learns nothing
        drop_work_of(c->session_id, "closed by its client");
        sessions.close(r.owner, c->session_id);
        ++st.sessions_closed;
        spdlog::info("session {} closed ({} open)", c->session_id, sessions.size());
        reply(r.peer, r.request_id, p::SessionClosed{c->session_id});
      } else {
        const auto& f = std::get<p::Forward>(r.body);
        sessions.get(r.owner, f.session_id);
        if (running_of.count(f.session_id)) {  // one forward per session runs at a time
          auto& q = deferred[f.session_id];
          if (q.size() >= opts.max_waiting_per_session)
            throw ProtocolError(ErrorCode::session_busy,
                                "session " + std::to_string(f.session_id) + " already has " +
                                    std::to_string(q.size()) + " forwards waiting; wait for their replies");
          q.push_back(std::move(r));
          return;
        }
        start_forward(std::move(r));
      }
    } catch (const ProtocolError& e) {
      refuse(r.peer, r.request_id, e.code(), e.what());
    } catch (const std::exception& e) {
      spdlog::error("request {} from '{}' failed: {}", r.request_id, p::printable(r.owner), e.what());
      refuse(r.peer, r.request_id, ErrorCode::internal, std::string("the daemon failed to admit this request: ") + e.what());
    }
  }

  void start_forward(EngineRequest&& r) {
    const auto& f = std::get<p::Forward>(r.body);
    Session& s = admit_forward(sessions, r.owner, f, r.wire_dtype, opts.contract);
    Job j;
    j.session = s.id;
    j.peer = r.peer;
    j.owner = r.owner;
    j.request_id = r.request_id;
    j.wire = r.wire_dtype;
    j.output = f.output;
    j.start = f.start_pos;
    j.n = f.n_positions;
    j.received = r.received;
    // on the host until its step: one copy to the device per step, not one per forward
    j.x = frame_to_tensor(p::view_of(r.frames.at(r.tensor_frame)), f.hidden, torch::kCPU, pipeline.dtype());
    const uint64_t id = next_job++;
    ScheduledForward sf;
    sf.job = id;
    sf.session = s.id;
    sf.start = j.start;
    sf.n = j.n;
    sf.arrived = j.received;
    jobs.emplace(id, std::move(j));
    running_of[s.id] = id;
    scheduler.add(sf);
  }

  // The session goes away: its waiting forward and those behind it are answered, not run.
  // Sessions that decoded lately: the rows the next step should carry.
  size_t active_decoders(Clock::time_point now) {
    for (auto it = recent_decoders.begin(); it != recent_decoders.end();)
      it = now - it->second > std::chrono::milliseconds(50) ? recent_decoders.erase(it) : std::next(it);
    return recent_decoders.size();
  }

  void drop_work_of(uint64_t session, const std::string& why) {
    recent_decoders.erase(session);
    if (auto it = running_of.find(session); it != running_of.end()) {
      scheduler.cancel(it->second);
      Job& j = jobs.at(it->second);
      refuse(j.peer, j.request_id, ErrorCode::unknown_session,
             "session " + std::to_string(session) + " was " + why + " before this forward ran");
      jobs.erase(it->second);
      running_of.erase(it);
    }
    if (auto it = deferred.find(session); it != deferred.end()) {
      for (auto& r : it->second)
        refuse(r.peer, r.request_id, ErrorCode::unknown_session,
               "session " + std::to_string(session) + " was " + why + " before this forward ran");
      deferred.erase(it);
    }
  }

  // A session's forward finished (or failed): the next one queued behind it may start.
  void next_of(uint64_t session) {
    running_of.erase(session);
    auto it = deferred.find(session);
    if (it == deferred.end()) return;
    EngineRequest r = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) deferred.erase(it);
    admit(std::move(r));
  }

  // ---- run --------------------------------------------------------------------------------------

  void step(const std::vector<PlannedRow>& rows) {
    StepBatch batch;
    std::vector<torch::Tensor> xs;
    for (const auto& r : rows) {
      Job& j = jobs.at(r.job);
      batch.rows.push_back({&sessions.find(j.session)->kv, r.start, r.n});
      xs.push_back(j.x.narrow(0, r.start - j.start, r.n));
    }
    torch::Tensor y;
    const auto t0 = Clock::now();
    auto t1 = t0;
    for (const auto& r : rows) {
      Job& j = jobs.at(r.job);
      if (!j.first_step) j.first_step = t0;
    }
    std::vector<std::chrono::nanoseconds> stage_time;
    try {
      auto x = xs.size() == 1 ? xs[0] : torch::cat(xs);  // [T, H] on the host
      if (pipeline.first_device().is_cuda()) x = x.pin_memory().to(pipeline.first_device(), /*non_blocking=*/true);
      t1 = Clock::now();
      y = pipeline.forward(batch, x, &stage_time).to(torch::kCPU);  // one copy to the host for the whole step
    } catch (const std::exception& e) {
      if (!dynamic_cast<const StepCancelled*>(&e)) spdlog::error("a step of {} rows failed: {}", rows.size(), e.what());
      // positions from each row's start on are undefined now: its session keeps [0, start)
      for (const auto& b : batch.rows) {
        auto* kv = const_cast<BlockTable*>(b.table);
        kv->length = std::min(kv->length, b.start);
      }
      for (uint64_t id : scheduler.fail(rows)) {
        Job& j = jobs.at(id);
        if (dynamic_cast<const StepCancelled*>(&e))
          refuse(j.peer, j.request_id, ErrorCode::shutting_down, "the daemon is stopping");
        else
          refuse(j.peer, j.request_id, ErrorCode::internal, std::string("the daemon failed to run this forward: ") + e.what());
        const uint64_t s = j.session;
        jobs.erase(id);
        next_of(s);
      }
      return;
    }
    const auto t2 = Clock::now();
    st.step_prep_seconds += std::chrono::duration<double>(t1 - t0).count();
    st.step_forward_seconds += std::chrono::duration<double>(t2 - t1).count();
    ++st.steps;
    st.rows_total += rows.size();
    ++st.batch_rows_hist[hist_bucket(rows.size())];
    int64_t off = 0;
    for (const auto& r : rows) {
      Job& j = jobs.at(r.job);
      auto yr = y.narrow(0, off, r.n);
      off += r.n;
      // the whole step's stage times count for every forward in it: each waited that long
      if (j.stage_time.size() < stage_time.size()) j.stage_time.resize(stage_time.size());
      for (size_t i = 0; i < stage_time.size(); ++i) j.stage_time[i] += stage_time[i];
      Session* s = sessions.find(j.session);
      s->kv.length = r.start + r.n;
      s->last_used = Clock::now();
      (r.n == 1 && j.n == 1 ? st.decode_tokens : st.prefill_tokens) += r.n;
      st.tokens_per_owner[j.owner] += r.n;
      if (j.output == p::OutputMode::all) j.out.push_back(yr);
      else if (r.start + r.n == j.start + j.n) j.out.push_back(yr.narrow(0, r.n - 1, 1));
    }
    for (uint64_t id : scheduler.complete(rows)) {
      Job& j = jobs.at(id);
      auto out = j.out.size() == 1 ? j.out[0] : torch::cat(j.out);
      p::Result res;
      res.session_id = j.session;
      res.n_positions_returned = static_cast<uint32_t>(out.size(0));
      res.start_pos = static_cast<uint32_t>(j.start + j.n - out.size(0));
      std::vector<zmq::message_t> t;
      t.push_back(tensor_to_frame(out, j.wire, res.hidden));
      res.cloud_compute_us = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - j.received).count());
      res.timing = timing_of(j);
      reply(j.peer, j.request_id, res, std::move(t));
      ++st.forwards_served;
      if (j.n == 1) recent_decoders[j.session] = Clock::now();
      const uint64_t s = j.session;
      jobs.erase(id);
      next_of(s);
    }
    const auto t3 = Clock::now();
    st.step_reply_seconds += std::chrono::duration<double>(t3 - t2).count();
    st.step_seconds_total += std::chrono::duration<double>(t3 - t0).count();
  }

  // Stats first, then the replies: a client that reads /metrics after its reply (e.g. after its
  // close_session) sees the state that reply left.
  void publish() {
    st.sessions_open = sessions.size();
    st.forwards_waiting = scheduler.waiting();
    st.kv_blocks_used = sessions.allocator().used_blocks();
    st.kv_blocks_free = sessions.allocator().free_blocks();
    st.kv_block_size = sessions.allocator().block_size();
    st.per_owner = sessions.usage();
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      published = st;
    }
    if (!pending.empty()) {
      {
        std::lock_guard<std::mutex> lock(out_mu);
        for (auto& r : pending) outbox.push_back(std::move(r));
      }
      pending.clear();
      if (on_replies) on_replies();
    }
  }

  void expire(Clock::time_point now) {
    for (uint64_t id : sessions.expire(now, [&](uint64_t s) { return running_of.count(s) > 0; })) {
      ++st.sessions_expired;
      drop_work_of(id, "expired");
      spdlog::info("session {} expired after {} s idle", id, opts.sessions.idle_timeout.count() / 1000);
    }
  }

  // The batching window (EngineOptions::batch_wait): admits what arrives until as many decode
  // rows wait as sessions decoded lately, or the window of the oldest waiting forward closes.
  void gather_decoders(const std::atomic<bool>& stop) {
    if (opts.batch_wait.count() <= 0 || scheduler.waiting() == 0) return;
    const auto deadline = scheduler.oldest_arrival() + opts.batch_wait;
    while (!stop.load() && scheduler.decode_waiting() < active_decoders(Clock::now()) && Clock::now() < deadline) {
      std::deque<EngineRequest> in;
      {
        std::unique_lock<std::mutex> lock(in_mu);
        in_cv.wait_until(lock, deadline, [&] { return !inbox.empty() || stop.load(); });
        in.swap(inbox);
      }
      for (auto& r : in) admit(std::move(r));
      if (!pending.empty()) publish();  // refusals and opens need not wait for the step
    }
  }

  void run(const std::atomic<bool>& stop) {
    torch::NoGradGuard no_grad;
    const StepCancelScope cancel_on_stop(&stop);  // a long step stops between blocks (issue 20, item 8)
    auto next_expiry = Clock::now() + std::chrono::seconds(1);
    while (!stop.load()) {
      std::deque<EngineRequest> in;
      {
        std::unique_lock<std::mutex> lock(in_mu);
        if (inbox.empty() && scheduler.waiting() == 0)
          in_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return !inbox.empty() || stop.load(); });
        in.swap(inbox);
      }
      for (auto& r : in) admit(std::move(r));
      gather_decoders(stop);
      auto rows = scheduler.next();
      if (!rows.empty()) step(rows);
      const auto now = Clock::now();
      if (now >= next_expiry) {
        expire(now);
        next_expiry = now + std::chrono::seconds(1);
      }
      publish();
    }
    // stopping: what waits is answered, every session closed
    std::deque<EngineRequest> in;
    {
      std::lock_guard<std::mutex> lock(in_mu);
      in.swap(inbox);
    }
    for (auto& r : in) refuse(r.peer, r.request_id, ErrorCode::shutting_down, "the daemon is stopping");
    for (auto& [s, q] : deferred)
      for (auto& r : q) refuse(r.peer, r.request_id, ErrorCode::shutting_down, "the daemon is stopping");
    deferred.clear();
    for (auto& [id, j] : jobs) refuse(j.peer, j.request_id, ErrorCode::shutting_down, "the daemon is stopping");
    jobs.clear();
    const double per = st.steps ? 1e3 / double(st.steps) : 0.0;
    spdlog::info("engine stopping: {} forwards served in {} steps ({:.1f} rows and {:.2f} ms a step: {:.2f} inputs, {:.2f} "
                 "forward, {:.2f} replies); {} CUDA graphs captured; closing {} sessions",
                 st.forwards_served, st.steps, st.steps ? double(st.rows_total) / st.steps : 0.0,
                 per * st.step_seconds_total, per * st.step_prep_seconds, per * st.step_forward_seconds,
                 per * st.step_reply_seconds, pipeline.graphs_captured(), sessions.size());
    sessions.close_all();
    publish();
  }
};

Engine::Engine(Pipeline& pipeline, EngineOptions options, std::function<void()> on_replies)
    : impl_(std::make_unique<Impl>(pipeline, std::move(options), std::move(on_replies))) {}
Engine::~Engine() = default;

void Engine::submit(EngineRequest request) {
  {
    std::lock_guard<std::mutex> lock(impl_->in_mu);
    impl_->inbox.push_back(std::move(request));
  }
  impl_->in_cv.notify_one();
}

std::vector<EngineReply> Engine::take_replies() {
  std::lock_guard<std::mutex> lock(impl_->out_mu);
  std::vector<EngineReply> out;
  out.swap(impl_->outbox);
  return out;
}

void Engine::run(const std::atomic<bool>& stop) { impl_->run(stop); }

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  return impl_->published;
}

}  // namespace duet::cloud
