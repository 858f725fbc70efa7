#pragma once
// Which browsers' requests `duet-edge serve` answers. A page on another site the user visits can
// send requests to a server on the user's own machine (a form's text/plain POST needs no CORS
// preflight; a DNS-rebinding page even arrives as same-origin with a foreign Host). So:
//   - Host: a server listening on loopback answers only Host names of loopback (localhost,
//     127.x.y.z, [::1]), whatever the port;
//   - Origin: a request that carries one is answered only when it is the server's own origin
//     (its host and port are the request's Host) or listed in allowed_origins ("*": any);
//   - POST bodies must be application/json (what every OpenAI client sends; a cross-site form
//     cannot send it without a preflight, which the Origin rule then refuses);
//   - CORS as llama-server answers it, for the origins allowed: preflight (OPTIONS) 204 with
//     Allow-Origin (the origin itself), Allow-Methods, Allow-Headers, Max-Age.
// No cpp-httplib here: the server's pre-routing handler gives the headers (and it is fuzzed).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edge/server/openai_json.hpp"

namespace duet::edge::server {

struct GuardPolicy {
  bool loopback_only_hosts = true;           // the server listens on loopback
  std::vector<std::string> allowed_origins;  // e.g. "http://localhost:3000"; "*": any
};

struct RequestFacts {
  std::string method, path;
  std::optional<std::string> host, origin, content_type;  // absent headers: nullopt
};

struct GuardVerdict {
  std::optional<ApiError> refuse;                            // answer with this and stop
  std::vector<std::pair<std::string, std::string>> headers;  // CORS headers to add to the reply
  bool preflight = false;                                    // an allowed OPTIONS: answer 204 with headers
};

GuardVerdict check_request(const GuardPolicy& policy, const RequestFacts& r);

// "localhost:8080" -> "localhost"; "[::1]:80" -> "::1"; lower case.
std::string host_name(const std::string& host_header);
bool is_loopback_name(const std::string& name);

}  // namespace duet::edge::server
