#include "protocol/recv.hpp"

namespace duet::protocol {

std::optional<std::size_t> recv_bounded(zmq::socket_t& socket, std::vector<zmq::message_t>& out,
                                        std::size_t keep, zmq::recv_flags flags, std::size_t* total_bytes) {
  out.clear();
  std::size_t total = 0, bytes = 0;
  for (;;) {
    zmq::message_t frame;
    // Only the first frame may wait: libzmq delivers a multipart message atomically, so the
    // remaining frames are already there.
    const auto r = socket.recv(frame, total == 0 ? flags : zmq::recv_flags::none);
    if (!r) {
      if (total == 0) return std::nullopt;
      break;  // cannot happen for an atomic multipart message; return what we have
    }
    ++total;
    bytes += frame.size();
    const bool more = frame.more();
    if (out.size() < keep) out.push_back(std::move(frame));
    if (!more) break;
  }
  if (total_bytes) *total_bytes = bytes;
  return total;
}

}  // namespace duet::protocol
