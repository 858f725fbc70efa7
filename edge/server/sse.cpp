#include "edge/server/sse.hpp"

namespace duet::edge::server {

std::string sse_event(const nlohmann::json& data) {
  // dump() escapes newlines inside strings, so the event is one line
  return "data: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

bool SseWriter::raw(const std::string& bytes) {
  if (!open_) return false;
  open_ = write_(bytes);
  return open_;
}

}  // namespace duet::edge::server
