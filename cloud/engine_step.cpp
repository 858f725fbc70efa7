#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "cloud/engine_impl.hpp"
#include "cloud/pipeline.hpp"
#include "common/batch.hpp"
#include "common/step_cancel.hpp"
#include "cloud/remote_stage.hpp"
#include "common/wire/tensor_frames.hpp"

namespace duet::cloud {

namespace p = protocol;
using p::ErrorCode;
using p::ProtocolError;
using engine_detail::Job;
using engine_detail::StepOutcome;

namespace {

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

namespace {

// What a throwing step says, sorted by what the engine does about it.
template <class Fn>
void run_guarded(StepOutcome& o, Fn&& fn) {
  try {
    fn();
  } catch (const StageUnavailable& e) {
    o.error = e.what();
    o.stage_lost = true;
  } catch (const StepCancelled& e) {
    o.error = e.what();
    o.cancelled = true;
  } catch (const std::exception& e) {
    o.error = e.what();
  }
}

}  // namespace

// One step in flight: the whole step at once (forward(), with each stage's time) or, with stages
// pipelined, handed to the first worker (submit()) and taken back by land().
void Engine::Impl::launch(std::vector<PlannedRow> rows) {
  InFlight f;
  StepOutcome& o = f.o;
  o.rows = std::move(rows);
  o.started = Clock::now();
  StepBatch batch;
  std::vector<torch::Tensor> xs;
  for (const auto& r : o.rows) {
    const Job& j = jobs.at(r.job);
    // what the forward's reply needs of this row: every position, or the last of the forward's
    // last chunk; the rest stays where it was computed
    const bool last_chunk = r.start + r.n == j.start + j.n;
    const int64_t out = j.output == p::OutputMode::all ? -1 : last_chunk ? 1 : 0;
    batch.rows.push_back({&sessions.find(j.session)->kv, r.start, r.n, out});
    o.outputs.push_back(batch.rows.back().outputs());
    xs.push_back(j.x.narrow(0, r.start - j.start, r.n));
    (r.n == 1 && j.n == 1 ? o.decode_rows : o.prefill_tokens) += r.n;
  }
  const bool pipelined = max_in_flight > 1;
  if (!in_flight.empty()) ++st.steps_pipelined;
  run_guarded(o, [&] {
    auto x = xs.size() == 1 ? xs[0] : torch::cat(xs);  // [T, H] on the host
    if (pipeline.first_device().is_cuda()) x = x.pin_memory().to(pipeline.first_device(), /*non_blocking=*/true);
    const auto t1 = Clock::now();
    o.prep_seconds = std::chrono::duration<double>(t1 - o.started).count();
    if (pipelined) {
      f.ticket = pipeline.submit(batch, x);
      return;
    }
    o.y = pipeline.forward(batch, x, &o.stage_time).to(torch::kCPU);  // one copy to the host for the whole step
    o.forward_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
    o.ok = true;
  });
  in_flight.push_back(std::move(f));
}

StepOutcome Engine::Impl::land() {
  InFlight f = std::move(in_flight.front());
  in_flight.pop_front();
  StepOutcome& o = f.o;
  if (f.ticket == 0 || !o.error.empty()) return std::move(o);  // ran whole, or failed as it was handed over
  run_guarded(o, [&] {
    o.y = pipeline.collect(f.ticket).to(torch::kCPU);
    o.ok = true;
  });
  // from the hand-over on: the stages' time, and the wait behind the steps ahead of it; per stage
  // it is one span (as forward() counts the workers' stages), on the last
  o.forward_seconds = std::chrono::duration<double>(Clock::now() - o.started).count() - o.prep_seconds;
  o.stage_time.assign(pipeline.stages().size(), std::chrono::nanoseconds(0));
  o.stage_time.back() = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(o.forward_seconds));
  return std::move(o);
}

// Rows whose job is gone belong to a session that ended while the step was in flight: its
// forward was answered then, and nothing of it is applied now.
void Engine::Impl::apply(StepOutcome&& o) {
  for (const auto& r : o.rows)
    if (auto it = jobs.find(r.job); it != jobs.end() && !it->second.first_step) it->second.first_step = o.started;
  if (!o.ok) return apply_failure(o);
  const auto t2 = Clock::now();
  st.step_prep_seconds += o.prep_seconds;
  st.step_forward_seconds += o.forward_seconds;
  ++st.steps;
  st.rows_total += o.rows.size();
  st.live_sessions_total += std::max(active_decoders(t2), o.rows.size());
  ++st.batch_rows_hist[hist_bucket(o.rows.size())];
  // what the step cost: launch to landing, or, with steps overlapped, no more than the time since
  // the one before landed (its launch-to-landing includes waiting behind that one)
  auto cost = t2 - o.started;
  if (max_in_flight > 1 && last_landed > o.started) cost = std::min(cost, t2 - last_landed);
  last_landed = t2;
  scheduler.observe(o.decode_rows, o.prefill_tokens, std::chrono::duration<double>(cost).count());
  spdlog::trace("step: {} rows ({} decode, {} prefill tokens) in {:.3f} ms", o.rows.size(), o.decode_rows,
                o.prefill_tokens, std::chrono::duration<double, std::milli>(cost).count());
  int64_t off = 0;
  for (size_t k = 0; k < o.rows.size(); ++k) {
    const auto& r = o.rows[k];
    auto yr = o.y.narrow(0, off, o.outputs[k]);  // what launch() asked of this row
    off += o.outputs[k];
    auto it = jobs.find(r.job);
    if (it == jobs.end()) continue;
    Job& j = it->second;
    // the whole step's stage times count for every forward in it: each waited that long
    if (j.stage_time.size() < o.stage_time.size()) j.stage_time.resize(o.stage_time.size());
    for (size_t i = 0; i < o.stage_time.size(); ++i) j.stage_time[i] += o.stage_time[i];
    sessions.commit(j.session, r.start + r.n, t2);
    (r.n == 1 && j.n == 1 ? st.decode_tokens : st.prefill_tokens) += r.n;
    st.tokens_per_owner[j.owner] += r.n;
    if (yr.size(0) > 0) j.out.push_back(yr);
  }
  for (uint64_t id : scheduler.complete(o.rows)) {
    if (!jobs.count(id)) continue;
    send_result(jobs.at(id));
    finish(id);
  }
  // a gone job with positions left went back to the queue: it must never be scheduled again
  for (const auto& r : o.rows)
    if (!jobs.count(r.job)) scheduler.cancel(r.job);
  const auto t3 = Clock::now();
  st.step_reply_seconds += std::chrono::duration<double>(t3 - t2).count();
  st.step_seconds_total += std::chrono::duration<double>(t3 - o.started).count();
}

void Engine::Impl::apply_failure(const StepOutcome& o) {
  if (o.stage_lost) return apply_stage_loss(o);
  if (!o.cancelled) spdlog::error("a step of {} rows failed: {}", o.rows.size(), o.error);
  // positions from each row's start on are undefined now: its session keeps [0, start)
  for (const auto& r : o.rows)
    if (auto it = jobs.find(r.job); it != jobs.end()) sessions.rollback(it->second.session, r.start);
  for (uint64_t id : scheduler.fail(o.rows)) {
    if (!jobs.count(id)) continue;
    Job& j = jobs.at(id);
    if (o.cancelled) refuse(j.peer, j.request_id, ErrorCode::shutting_down, "the daemon is stopping");
    else refuse(j.peer, j.request_id, ErrorCode::internal, "the daemon failed to run this forward: " + o.error);
    finish(id);
  }
}

// A stage worker went away mid-step: the KV of every session lives partly in its pool, so all
// sessions end (their edges replay into new ones once the worker is back, losing no token) and the
// step's forwards are answered with the missing worker's name.
void Engine::Impl::apply_stage_loss(const StepOutcome& o) {
  spdlog::warn("a step of {} rows lost a stage worker: {}", o.rows.size(), o.error);
  std::vector<std::pair<std::string, uint64_t>> step_forwards;
  auto fail_step = [&](const std::vector<PlannedRow>& rows) {
    for (uint64_t id : scheduler.fail(rows)) {
      auto it = jobs.find(id);
      if (it == jobs.end()) continue;
      step_forwards.push_back({it->second.peer, it->second.request_id});
      running_of.erase(it->second.session);
      jobs.erase(it);
    }
  };
  fail_step(o.rows);
  // the steps behind it in flight: landed in order (a lost generation fails them at once), so the
  // Pipeline and the chain agree on what is in flight, then failed with it
  while (!in_flight.empty()) fail_step(land().rows);
  for (const auto& [peer, rid] : step_forwards)
    refuse(peer, rid, ErrorCode::stage_unavailable, o.error + "; the session was closed: replay it once the worker is back");
  end_all_sessions("closed: a stage worker went away (" + o.error + ")");
}

void Engine::Impl::send_result(Job& j) {
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
  // a session whose prompt is done decodes next: from now on it counts as mid-generation, so
  // another key's prefill is time-capped before its first decode arrives
  decoders.replied(j.session, Clock::now());
}

}  // namespace duet::cloud
