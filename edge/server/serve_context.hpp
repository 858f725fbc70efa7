#pragma once
// What every route of `duet-edge serve` shares: the loaded edge model, the per-request cloud
// sessions, the model's defaults, its chat template (or why it has none), its music prompt spec,
// and the server's settings. Built once at start; read-only afterwards (RequestSessions locks
// its own state).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edge/client/edge_client.hpp"
#include "edge/client/music_prompt.hpp"
#include "edge/server/chat_template.hpp"
#include "edge/server/request_sessions.hpp"

namespace duet::edge::server {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback: off the network unless asked
  int port = 8080;                 // 0: any free port (printed at start)
  std::string api_key;             // when set, every /v1 and /api request needs "Authorization: Bearer KEY"
  std::string web_dir;             // the music page and its node_modules (web/)
  size_t max_active = 4;           // requests generating at once; more wait
  size_t max_body_bytes = 1 << 20;  // larger request bodies: 413 before they are read
  std::vector<std::string> allowed_origins;  // browser origins besides the server's own ("*": any)
};

struct ServeContext {
  ServeContext(EdgeClient& c, const ServeOptions& o, GenerationOptions d);
  EdgeClient& client;
  ServeOptions opts;
  RequestSessions sessions;
  GenerationOptions defaults;  // budget, sampling (config or duet.json), EOS ids
  std::string model_id;        // the model folder's name
  int64_t created = 0;         // start time, Unix seconds
  std::optional<ChatTemplate> chat;
  std::string chat_error;      // why there is no chat template
  std::optional<MusicPromptSpec> music;
};

}  // namespace duet::edge::server
