#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>

#include "cloud/admission.hpp"
#include "cloud/engine_impl.hpp"
#include "cloud/pipeline.hpp"
#include "common/wire/tensor_frames.hpp"

namespace duet::cloud {

namespace p = protocol;
using p::ErrorCode;
using p::ProtocolError;
using engine_detail::Job;
using engine_detail::StepOutcome;

// Opens, closes, and forwards: a forward starts when its session has none running, else waits
// behind it (bounded). Every refusal is answered here.
void Engine::Impl::admit(EngineRequest&& r) {
  try {
    if (auto* m = std::get_if<p::OpenSession>(&r.body)) {
      if (const auto why = pipeline.unavailable_reason(); !why.empty())
        throw ProtocolError(ErrorCode::stage_unavailable, why + "; retry shortly");
      follow_workers();  // the workers it opens on are the ones its KV will live in
      Session& s = sessions.open(r.owner, m->max_positions);
      intake.opened(s.id, s.owner);  // before the reply: its first forward may follow at once
      ++st.sessions_opened;
      spdlog::info("session {} opened for '{}' ({} positions; {} open)", s.id, p::printable(r.owner),
                   s.max_positions, sessions.size());
      reply(r.peer, r.request_id, p::SessionOpened{s.id, s.max_positions});
    } else if (auto* c = std::get_if<p::CloseSession>(&r.body)) {
      sessions.get(r.owner, c->session_id);  // owner check first: another key learns nothing
      end_session(c->session_id, "closed by its client");
      sessions.close(r.owner, c->session_id);
      ++st.sessions_closed;
      spdlog::info("session {} closed ({} open)", c->session_id, sessions.size());
      reply(r.peer, r.request_id, p::SessionClosed{c->session_id});
    } else {
      const auto& f = std::get<p::Forward>(r.body);
      sessions.get(r.owner, f.session_id);
      if (f.n_positions == 1) decoders.arrived(f.session_id, r.received);
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

// Admission checks (throw, changing nothing), then the job goes to the scheduler.
void Engine::Impl::start_forward(EngineRequest&& r) {
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
  j.ticket = std::move(r.ticket);
  // on the host until its step: one copy to the device per step, not one per forward
  j.x = frame_to_tensor(p::view_of(r.frames.at(r.tensor_frame)), f.hidden, torch::kCPU, pipeline.dtype());
  const uint64_t id = next_job++;
  ScheduledForward sf;
  sf.job = id;
  sf.session = s.id;
  sf.owner = r.owner;
  sf.start = j.start;
  sf.n = j.n;
  sf.arrived = j.received;
  jobs.emplace(id, std::move(j));
  running_of[s.id] = id;
  scheduler.add(sf);
}

// The session's forward is done (replied, refused or dropped): the next one queued behind it
// is admitted now, and each refused one is answered, until one starts or none is left. The one
// place a session's queue moves on.
void Engine::Impl::admit_next(uint64_t session) {
  running_of.erase(session);
  auto it = deferred.find(session);
  while (it != deferred.end() && !it->second.empty() && !running_of.count(session)) {
    EngineRequest r = std::move(it->second.front());
    it->second.pop_front();
    admit(std::move(r));
  }
  if (it != deferred.end() && it->second.empty()) deferred.erase(it);
}

void Engine::Impl::finish(uint64_t job) {
  auto it = jobs.find(job);
  if (it == jobs.end()) return;
  const uint64_t s = it->second.session;
  jobs.erase(it);
  admit_next(s);
}

// The session goes away: its waiting forward and those behind it are answered, not run.
void Engine::Impl::end_session(uint64_t session, const std::string& why) {
  decoders.forget(session);
  intake.closed(session);
  const std::string text = "session " + std::to_string(session) + " was " + why + " before this forward ran";
  if (auto it = running_of.find(session); it != running_of.end()) {
    scheduler.cancel(it->second);
    Job& j = jobs.at(it->second);
    refuse(j.peer, j.request_id, ErrorCode::unknown_session, text);
    jobs.erase(it->second);
    running_of.erase(it);
  }
  if (auto it = deferred.find(session); it != deferred.end()) {
    for (auto& r : it->second) refuse(r.peer, r.request_id, ErrorCode::unknown_session, text);
    deferred.erase(it);
  }
}

void Engine::Impl::end_all_sessions(const std::string& why) {
  std::vector<std::pair<std::string, uint64_t>> all;  // (owner, id)
  for (uint64_t id : sessions.ids()) all.push_back({sessions.find(id)->owner, id});
  for (const auto& [owner, id] : all) {
    end_session(id, why);
    sessions.close(owner, id);
    ++st.sessions_closed;
  }
  if (!all.empty()) spdlog::warn("{} sessions {}", all.size(), why);
}

// A connection closed: what it queued and has not run is dropped unanswered (nobody reads it),
// and the forwards queued behind them by other connections of the key go on.
void Engine::Impl::drop_peer(const std::string& peer) {
  size_t dropped = 0;
  for (auto& [s, q] : deferred) {
    const auto before = q.size();
    q.erase(std::remove_if(q.begin(), q.end(), [&](const EngineRequest& r) { return r.peer == peer; }), q.end());
    dropped += before - q.size();
  }
  // (deferred ones are dropped without a reply: they are behind a job of the same peer, which
  // is answered below, or of another connection of the key)
  std::vector<uint64_t> gone;
  for (const auto& [id, j] : jobs)
    if (j.peer == peer && scheduler.cancel(id)) gone.push_back(id);
  dropped += gone.size();
  for (uint64_t id : gone) {
    // answered all the same: the send fails harmlessly when the peer is gone, and a new
    // connection that got the closed one's descriptor learns to greet again
    const Job& j = jobs.at(id);
    refuse(j.peer, j.request_id, ErrorCode::handshake_required,
           "the connection this forward came on closed before it ran; say hello again and resend it");
    finish(id);
  }
  for (auto it = deferred.begin(); it != deferred.end();)
    it = it->second.empty() ? deferred.erase(it) : std::next(it);
  if (dropped > 0) spdlog::info("connection closed: {} of its forwards not yet run were dropped", dropped);
  st.forwards_dropped_gone += dropped;
}

}  // namespace duet::cloud
