#pragma once
// Server-sent events as OpenAI streams them: one "data: <json>\n\n" event per chunk, an error as
// a data event holding OpenAI's error object, and "data: [DONE]\n\n" at the end.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace duet::edge::server {

std::string sse_event(const nlohmann::json& data);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

// Writes events to a response body; false once the reader went away (then stays false).
class SseWriter {
 public:
  using Write = std::function<bool(const std::string&)>;
  explicit SseWriter(Write write) : write_(std::move(write)) {}
  bool send(const nlohmann::json& data) { return raw(sse_event(data)); }
  bool done() { return raw(sse_done()); }
  bool open() const { return open_; }

 private:
  bool raw(const std::string& bytes);
  Write write_;
  bool open_ = true;
};

}  // namespace duet::edge::server
