#include "bench/load_edge.hpp"

#include <chrono>
#include <cstring>

#include "protocol/validate.hpp"

namespace duet::bench {

namespace p = protocol;

LoadEdge::LoadEdge(const edge::ConnectionOptions& opts, const std::string& fingerprint) : conn_(opts, fingerprint) {
  row_bytes_ = size_t(conn_.server().hidden_size) * p::element_size(opts.wire_dtype);
}

LoadEdge::~LoadEdge() {
  try {
    close();
  } catch (const std::exception&) {
    // the daemon expires it anyway
  }
}

void LoadEdge::open(uint32_t max_positions) {
  std::vector<zmq::message_t> reply;
  auto msg = conn_.request(p::OpenSession{max_positions}, {}, reply);
  const auto& s = msg.as<p::SessionOpened>();
  if (s.max_positions < max_positions)
    throw std::runtime_error("the daemon granted " + std::to_string(s.max_positions) + " positions per session, " +
                             std::to_string(max_positions) + " are needed: start duet-cloud with --max-positions " +
                             std::to_string(max_positions) + " or more");
  session_ = s.session_id;
}

void LoadEdge::close() {
  if (!session_) return;
  const uint64_t id = session_;
  session_ = 0;
  std::vector<zmq::message_t> reply;
  conn_.request(p::CloseSession{id}, {}, reply);
}

StepTiming LoadEdge::forward(uint32_t start, uint32_t n, const std::byte* rows, std::vector<std::byte>& out) {
  // one forward carries at most the daemon's per-forward limit (the bench's prompts are shorter)
  if (n > conn_.server().limits.max_positions_per_forward)
    throw std::runtime_error("a forward of " + std::to_string(n) + " positions exceeds the daemon's --max-forward " +
                             std::to_string(conn_.server().limits.max_positions_per_forward));
  p::Forward f;
  f.session_id = session_;
  f.start_pos = start;
  f.n_positions = n;
  f.output = p::OutputMode::last;
  f.hidden.dtype = conn_.options().wire_dtype;
  f.hidden.shape = {n, conn_.server().hidden_size};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<zmq::message_t> tensors;
  tensors.push_back(p::tensor_frame_copy(rows, row_bytes_ * n));
  std::vector<zmq::message_t> reply;
  auto msg = conn_.request(f, std::move(tensors), reply);
  const auto t1 = std::chrono::steady_clock::now();
  const auto& r = msg.as<p::Result>();
  p::validate_result(r, f, p::ForwardContract{conn_.server().hidden_size, conn_.options().wire_dtype,
                                              conn_.server().limits.max_positions_per_forward});
  const auto& frame = msg.tensors.at(0);
  out.insert(out.end(), frame.data, frame.data + frame.size);
  return {std::chrono::duration<double, std::milli>(t1 - t0).count(), r.cloud_compute_us / 1000.0};
}

}  // namespace duet::bench
