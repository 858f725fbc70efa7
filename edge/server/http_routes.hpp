#pragma once
// `duet-edge serve`: the HTTP server and its OpenAI-compatible routes
//   GET  /v1/models                 the one model served
//   POST /v1/completions            prompt -> text (stream: server-sent events, then [DONE])
//   POST /v1/chat/completions       messages through the model's chat template -> text
//   POST /tokenize, /detokenize     llama-server's: {"content", "add_special"} <-> {"tokens"}
//   GET  /props                     the defaults a request starts from (llama-server's shape, in part)
//   GET  /health                    {"status": "ok", ...}; 503 {"status": "unavailable", "error"}
//                                   while the daemon does not answer a hello (probed, 1 s at most)
// and, for music models, the page (music_page.hpp). Errors are OpenAI's error objects.
// cpp-httplib stays inside the .cpp files.
#include <memory>
#include <string>

#include "edge/server/serve_context.hpp"

namespace duet::edge::server {

// Throws ApiError 401 unless the server has no key or `authorization` is "Bearer KEY".
void check_api_key(const ServeContext& ctx, const std::string& authorization);

// Threads beyond 2 × max_active: connections that may be open at once without a wait.
inline constexpr size_t kSpareConnections = 64;

class ApiServer {
 public:
  explicit ApiServer(ServeContext& ctx);
  ~ApiServer();
  // Binds host:port; returns the port (the chosen one when port is 0). Throws when it cannot.
  int bind();
  void run();   // serves until stop()
  void stop();  // from any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::edge::server
