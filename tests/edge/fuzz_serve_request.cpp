// libFuzzer harness over what `duet-edge serve` does with a request before any model runs: the
// body's depth check and parse, the OpenAI completion and chat readers, the music page's reader,
// and the Host/Origin/Content-Type guard. The first byte picks the handler, the rest is the body
// (for the guard: method, Host, Origin and Content-Type, one per line). Bad input may only ever
// raise ApiError, whose reply must then be writable; anything else (another exception, a
// sanitizer report, a crash, a stack overflow) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

#include "edge/server/music_request.hpp"
#include "edge/server/openai_json.hpp"
#include "edge/server/request_guard.hpp"

using namespace duet::edge::server;

namespace {

RequestFacts facts_of(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  RequestFacts f;
  std::getline(in, f.method);
  if (std::getline(in, line) && !line.empty()) f.host = line;
  if (std::getline(in, line) && !line.empty()) f.origin = line;
  if (std::getline(in, line) && !line.empty()) f.content_type = line;
  return f;
}

void guard(const std::string& text) {
  GuardPolicy p;
  p.allowed_origins = {"http://localhost:3000"};
  const RequestFacts f = facts_of(text);
  const GuardVerdict v = check_request(p, f);
  if (v.refuse) (void)json_text(v.refuse->body());
  if (v.preflight && v.refuse) std::abort();  // one or the other
  p.loopback_only_hosts = false;
  (void)check_request(p, f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 4) {
      case 0: (void)parse_request(body, false); break;
      case 1: (void)parse_request(body, true); break;
      case 2: (void)parse_music_request(body); break;
      default: guard(body); break;
    }
  } catch (const ApiError& e) {
    (void)json_text(e.body());  // the error reply itself must never throw
  }
  return 0;
}
