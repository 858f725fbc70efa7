#include "edge/client/remote_backbone.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/wire/tensor_frames.hpp"
#include "protocol/validate.hpp"

namespace duet::edge {

namespace p = protocol;

RemoteBackbone::RemoteBackbone(CloudConnection& conn, uint32_t max_positions)
    : conn_(conn), max_positions_(max_positions) {}

RemoteBackbone::~RemoteBackbone() {
  if (!session_) return;
  try {
    // bounded: a dead daemon must not hold a cancelled request (or a stopping server) for the
    // whole request timeout
    std::vector<zmq::message_t> reply;
    conn_.request(p::CloseSession{session_}, {}, reply, kCloseTimeout);
  } catch (const std::exception&) {
    // the daemon expires it anyway
  }
}

void RemoteBackbone::open() {
  std::vector<zmq::message_t> reply;
  try {
    auto msg = conn_.request(p::OpenSession{max_positions_}, {}, reply);
    session_ = msg.as<p::SessionOpened>().session_id;
  } catch (const CloudError& e) {
    // a pooled connection the daemon forgot (idle longer than its timeout, or a restarted
    // daemon): greet it again and open once more
    if (e.failure() != CloudFailure::daemon_error || e.protocol_code() != p::ErrorCode::handshake_required) throw;
    conn_.hello();
    auto msg = conn_.request(p::OpenSession{max_positions_}, {}, reply);
    session_ = msg.as<p::SessionOpened>().session_id;
  }
}

void RemoteBackbone::reset() { sent_.clear(); }  // the next forward starts at 0 and overwrites

torch::Tensor RemoteBackbone::send(const torch::Tensor& hidden, int64_t start, bool last_only) {
  return send_host(hidden.to(torch::kCPU), start, last_only, hidden.device(), hidden.scalar_type());
}

torch::Tensor RemoteBackbone::send_host(const torch::Tensor& host, int64_t start, bool last_only, c10::Device device,
                                        c10::ScalarType dtype) {
  // a forward carries at most the daemon's per-forward limit: a longer prefill goes in chunks
  const int64_t chunk = std::max<int64_t>(1, conn_.server().limits.max_positions_per_forward);
  const int64_t n = host.size(0);
  if (n > chunk) {
    std::vector<torch::Tensor> outs;
    for (int64_t s = 0; s < n; s += chunk) {
      auto out = send_host(host.narrow(0, s, std::min(chunk, n - s)), start + s, last_only, device, dtype);
      if (!last_only || s + chunk >= n) outs.push_back(out);
    }
    return outs.size() == 1 ? outs.front() : torch::cat(outs);
  }
  const auto& hidden = host;
  p::Forward f;
  f.session_id = session_;
  f.start_pos = static_cast<uint32_t>(start);
  f.n_positions = static_cast<uint32_t>(hidden.size(0));
  f.output = last_only ? p::OutputMode::last : p::OutputMode::all;
  std::vector<zmq::message_t> tensors;
  tensors.push_back(tensor_to_frame(hidden, conn_.options().wire_dtype, f.hidden));
  std::vector<zmq::message_t> reply;
  const auto t0 = std::chrono::steady_clock::now();
  auto msg = conn_.request(f, std::move(tensors), reply);
  const double request_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto& r = msg.as<p::Result>();
  p::ForwardContract contract{conn_.server().hidden_size, conn_.options().wire_dtype,
                              conn_.server().limits.max_positions_per_forward};
  p::validate_result(r, f, contract);
  // a daemon's NaN must end the generation with an error, never become tokens
  p::check_finite_frame("the daemon's result", r.hidden, msg.tensors.at(0).data, msg.tensors.at(0).size);
  last_cloud_ms_ = r.cloud_compute_us / 1000.0;
  note_timing(request_ms, r);
  return frame_to_tensor(msg.tensors.at(0), r.hidden, device, dtype);
}

void RemoteBackbone::note_timing(double request_ms, const p::Result& r) {
  RoundTiming& t = timing_;
  const bool first = t.forwards++ == 0;
  t.request_ms = (first ? 0 : t.request_ms) + request_ms;
  t.daemon_ms = (first ? 0 : t.daemon_ms) + r.cloud_compute_us / 1000.0;
  if (!r.timing) {  // a daemon that does not say: unknown for the whole call
    t.queue_ms = -1;
    t.stage_ms.clear();
    return;
  }
  if (first) {
    t.queue_ms = 0;
    t.stage_ms.assign(r.timing->stage_us.size(), 0.0);
  } else if (t.queue_ms < 0 || t.stage_ms.size() != r.timing->stage_us.size()) {
    return;  // an earlier message had none, or another plan (a restarted daemon): stays unknown
  }
  t.queue_ms += r.timing->queue_us / 1000.0;
  for (size_t i = 0; i < t.stage_ms.size(); ++i) t.stage_ms[i] += r.timing->stage_us[i] / 1000.0;
}

// A daemon whose stage worker is away refuses opens with stage_unavailable until it is back:
// wait for it (backing off, up to a minute), then go on; any other refusal is the caller's.
void RemoteBackbone::open_when_ready() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (auto pause = std::chrono::milliseconds(250);; pause = std::min(pause * 2, std::chrono::milliseconds(4000))) {
    try {
      open();
      return;
    } catch (const CloudError& e) {
      if (e.protocol_code() != p::ErrorCode::stage_unavailable || std::chrono::steady_clock::now() + pause > deadline) throw;
      std::this_thread::sleep_for(pause);
    }
  }
}

void RemoteBackbone::replay(int64_t upto) {
  // resend positions [0, upto); send_host splits them into forwards the daemon accepts
  if (upto == 0) return;
  std::vector<torch::Tensor> rows(sent_.begin(), sent_.begin() + upto);
  send(torch::cat(rows), 0, true);
}

torch::Tensor RemoteBackbone::forward(const torch::Tensor& hidden, int64_t start, bool last_only) {
  if (start > static_cast<int64_t>(sent_.size()))
    throw std::invalid_argument("remote backbone: forward at position " + std::to_string(start) + " but only " +
                                std::to_string(sent_.size()) + " positions were sent");
  if (!session_) open_when_ready();
  timing_ = RoundTiming{};
  // one device-to-host copy per step: the frame and the replay record both come from it
  auto host = hidden.to(torch::kCPU);
  torch::Tensor out;
  try {
    out = send_host(host, start, last_only, hidden.device(), hidden.scalar_type());
  } catch (const CloudError& e) {
    const auto code = e.protocol_code();
    const bool lost = e.failure() == CloudFailure::daemon_error &&
                      (code == p::ErrorCode::unknown_session || code == p::ErrorCode::handshake_required ||
                       code == p::ErrorCode::stage_unavailable);
    if (!lost) throw;
    // the daemon forgot us (idle expiry, restart): shake hands again if needed, reopen, replay
    if (code == p::ErrorCode::handshake_required) conn_.hello();
    open_when_ready();
    ++resumes_;
    replay(start);
    out = send_host(host, start, last_only, hidden.device(), hidden.scalar_type());
  }
  // remember what was sent, by position, for a later replay
  auto rows = host.split(1, 0);
  sent_.resize(static_cast<size_t>(start));
  sent_.insert(sent_.end(), rows.begin(), rows.end());
  return out;
}

}  // namespace duet::edge
