#include "cloud/engine.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "cloud/engine_impl.hpp"
#include "cloud/pipeline.hpp"
#include "cloud/remote_stage.hpp"
#include "common/step_cancel.hpp"

namespace duet::cloud {

namespace p = protocol;
using p::ErrorCode;
using p::ProtocolError;
using engine_detail::Job;
using engine_detail::StepOutcome;

namespace {

uint64_t request_bytes(const EngineRequest& r) {
  uint64_t b = 0;
  for (const auto& f : r.frames) b += f.size();
  return b;
}

}  // namespace

// Stats first, then the replies: a client that reads /metrics after its reply (e.g. after its
// close_session) sees the state that reply left.
void Engine::Impl::publish() {
  st.sessions_open = sessions.size();
  st.forwards_waiting = scheduler.waiting();
  for (const auto& [s, q] : deferred) st.forwards_waiting += q.size();
  st.queued_bytes = intake.queued_bytes();
  st.kv_blocks_used = sessions.allocator().used_blocks();
  st.kv_blocks_free = sessions.allocator().free_blocks();
  st.kv_block_size = sessions.allocator().block_size();
  st.per_owner = sessions.usage();
  st.decode_step_seconds = scheduler.cost().decode_step_seconds();
  st.prefill_token_seconds = scheduler.cost().prefill_token_seconds();
  st.prefill_overhead_seconds = scheduler.cost().prefill_overhead_seconds();
  st.turnaround_hist = decoders.histogram();
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

void Engine::Impl::expire(Clock::time_point now) {
  for (uint64_t id : sessions.expire(now, [&](uint64_t s) { return running_of.count(s) > 0; })) {
    ++st.sessions_expired;
    end_session(id, "expired");
    spdlog::info("session {} expired after {} s idle", id, opts.sessions.idle_timeout.count() / 1000);
  }
}

// The stage workers re-formed since the sessions were opened: their KV is gone with the old
// generation, so those sessions end (their edges replay). Also asked right before a session
// opens, so that a session opened on the new workers is not ended for the old ones' loss.
void Engine::Impl::follow_workers() {
  auto* chain = pipeline.remote();
  if (!chain || chain->generation() == workers_generation) return;
  if (workers_generation != 0) end_all_sessions("closed: the stage workers re-formed (their KV is gone); replay");
  workers_generation = chain->generation();
  st.stages = pipeline.stage_rows();  // where the workers joined from
}

void Engine::Impl::wait_for_input(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                                  const std::atomic<bool>& stop) {
  const auto ready = [&] { return !inbox.empty() || !gone_peers.empty() || stop.load(); };
  if (ready()) return;
  if (spin.active(Clock::now())) {
    const uint64_t seen = posted.load(std::memory_order_relaxed);  // under in_mu: nothing posted since ready()
    const auto until = std::min(deadline, spin.until());
    lock.unlock();
    while (posted.load(std::memory_order_acquire) == seen && !stop.load() && Clock::now() < until)
      std::this_thread::yield();
    lock.lock();
  }
  in_cv.wait_until(lock, deadline, ready);
}

// What the socket thread handed over: closed connections first (their queued work is not
// admitted), then requests in arrival order.
void Engine::Impl::take_inbox(std::unique_lock<std::mutex>& lock) {
  std::deque<EngineRequest> in;
  std::vector<std::string> gone;
  in.swap(inbox);
  gone.swap(gone_peers);
  lock.unlock();
  if (!in.empty() || !gone.empty()) spin.touch(Clock::now());
  for (const auto& peer : gone) {
    in.erase(std::remove_if(in.begin(), in.end(), [&](const EngineRequest& r) { return r.peer == peer; }), in.end());
    drop_peer(peer);
  }
  const auto now = Clock::now();
  for (auto& r : in) {
    st.handoff_in_seconds += std::chrono::duration<double>(now - r.received).count();
    ++st.handoffs_in;
    admit(std::move(r));
  }
}

// The batching window (EngineOptions::batch_wait): admits what arrives while sessions replied to
// are predicted back (cloud/decoder_turnaround.hpp) within the window from now, as long as
// waiting costs the decodes already waiting less than missing the step would cost those due
// (worth_waiting). A decode waits at most one window per step for others; a session on a slow
// link is not predicted inside the window and holds no one. (Anchoring the window on the oldest
// waiting decode, as before, closed it whenever sessions came back while a step ran: two cohorts
// then alternated half-full steps for good.)
void Engine::Impl::gather_decoders(const std::atomic<bool>& stop) {
  const double step_s = scheduler.cost().decode_step_seconds();
  const auto by_step = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(opts.batch_wait_step_fraction * step_s));
  const auto window = std::max(opts.batch_wait, by_step);
  if (window.count() <= 0 || scheduler.waiting() == 0) return;
  const auto t0 = Clock::now();
  const auto deadline = t0 + window;
  // with no step measured yet (a fixed --batch-wait-us alone), missing one costs the window
  const double miss_s = step_s > 0 ? step_s : std::chrono::duration<double>(window).count();
  bool waited = false;
  for (auto now = t0; !stop.load() && now < deadline; now = Clock::now()) {
    if (!worth_waiting(scheduler.decode_waiting(), decoders.due_by(deadline),
                       std::chrono::duration<double>(deadline - now).count(), miss_s))
      break;
    waited = true;
    std::unique_lock<std::mutex> lock(in_mu);
    wait_for_input(lock, deadline, stop);
    take_inbox(lock);
    if (!pending.empty()) publish();  // refusals and opens need not wait for the step
  }
  if (waited) {
    ++st.gathers;
    st.gather_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
}

void Engine::Impl::run(const std::atomic<bool>& stop) {
  torch::NoGradGuard no_grad;
  const StepCancelScope cancel_on_stop(&stop);  // a step in flight stops between blocks (common/step_cancel.hpp)
  auto next_expiry = Clock::now() + std::chrono::seconds(1);
  while (!stop.load()) {
    {
      std::unique_lock<std::mutex> lock(in_mu);
      if (scheduler.waiting() == 0 && in_flight.empty())
        wait_for_input(lock, Clock::now() + std::chrono::milliseconds(100), stop);
      take_inbox(lock);
    }
    follow_workers();
    if (in_flight.empty()) gather_decoders(stop);
    while (in_flight.size() < max_in_flight) {
      // stages pipelined: what waits is cut into as many micro-batches as there are free slots,
      // so each stage has a step to run
      const size_t slots = max_in_flight - in_flight.size();
      const int64_t cap = max_in_flight > 1 ? int64_t((scheduler.waiting() + slots - 1) / slots) : 0;
      auto rows = scheduler.next(active_decoders(Clock::now(), Impl::kDecoderMemory) > 0, cap);
      if (rows.empty()) break;
      launch(std::move(rows));
    }
    if (!in_flight.empty()) {
      apply(land());
      spin.touch(Clock::now());
    }
    const auto now = Clock::now();
    if (now >= next_expiry) {
      expire(now);
      next_expiry = now + std::chrono::seconds(1);
    }
    publish();
  }
  shut_down();
}

// Stopping: the steps in flight land (cancelled where they run here), what waits is answered,
// every session closed.
void Engine::Impl::shut_down() {
  while (!in_flight.empty()) apply(land());
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
  spdlog::info("engine stopping: {} forwards served in {} steps ({:.1f} rows of {:.1f} live sessions and {:.2f} ms a "
               "step: {:.2f} inputs, {:.2f} forward, {:.2f} replies; {:.2f} ms waited for due sessions in {} of "
               "them; turnaround p50 {} ms, p90 {} ms; {} launched behind another in flight); {} CUDA graphs "
               "captured; closing {} sessions",
               st.forwards_served, st.steps, st.steps ? double(st.rows_total) / st.steps : 0.0,
               st.steps ? double(st.live_sessions_total) / st.steps : 0.0, per * st.step_seconds_total,
               per * st.step_prep_seconds, per * st.step_forward_seconds, per * st.step_reply_seconds,
               st.gathers ? 1e3 * st.gather_seconds / double(st.gathers) : 0.0, st.gathers,
               decoders.quantile_ms(0.5), decoders.quantile_ms(0.9), st.steps_pipelined, pipeline.graphs_captured(),
               sessions.size());
  sessions.close_all();
  publish();
}

Engine::Engine(Pipeline& pipeline, EngineOptions options, std::function<void()> on_replies)
    : impl_(std::make_unique<Impl>(pipeline, std::move(options), std::move(on_replies))) {}
Engine::~Engine() = default;

void Engine::submit(EngineRequest request) {
  uint64_t session = 0;
  if (auto* f = std::get_if<p::Forward>(&request.body)) session = f->session_id;
  // checked before it is queued: a forward to a session the key does not own, or past the
  // bytes bound, is refused here and its frames freed at once
  request.ticket = impl_->intake.admit(request.owner, session, request_bytes(request));
  {
    std::lock_guard<std::mutex> lock(impl_->in_mu);
    impl_->inbox.push_back(std::move(request));
    impl_->posted.fetch_add(1, std::memory_order_release);
  }
  impl_->in_cv.notify_one();
}

void Engine::connection_closed(const std::string& peer) {
  {
    std::lock_guard<std::mutex> lock(impl_->in_mu);
    impl_->gone_peers.push_back(peer);
    impl_->posted.fetch_add(1, std::memory_order_release);
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
