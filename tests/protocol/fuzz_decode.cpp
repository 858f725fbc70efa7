// libFuzzer harness: arbitrary bytes, split into frames (fuzz_frames.hpp), through the decoder
// and the context checks. Bad input may only ever raise ProtocolError; anything else (another
// exception, a sanitizer report, a crash) is a bug. A message that decodes must re-encode to
// a header that decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz_frames.hpp"
#include "protocol/messages.hpp"
#include "protocol/validate.hpp"

using namespace duet::protocol;

namespace {

void context_checks(const DecodedMessage& m) {
  const ForwardContract contract{4, WireDtype::bf16, 64};
  try {
    if (const auto* f = std::get_if<Forward>(&m.body)) {
      if (!m.tensors.empty()) check_finite_frame("fuzz", f->hidden, m.tensors[0].data, m.tensors[0].size);
      validate_forward(*f, contract);
      check_forward_positions(f->start_pos, f->start_pos, f->n_positions, 1u << 20);
    } else if (const auto* r = std::get_if<Result>(&m.body)) {
      Forward req{r->session_id, r->start_pos, r->n_positions_returned, OutputMode::all,
                  r->hidden};
      validate_result(*r, req, contract);
    } else if (const auto* h = std::get_if<Hello>(&m.body)) {
      check_hello(*h, std::string(64, 'a'), kAllWireDtypes);
    } else if (const auto* hr = std::get_if<HelloReply>(&m.body)) {
      check_hello_reply(*hr, std::string(64, 'a'), WireDtype::bf16);
    }
  } catch (const ProtocolError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<FrameView> frames = fuzz::split_frames(data, size);
  DecodeLimits limits;
  limits.max_message_bytes = 1 << 16;
  DecodedMessage m;
  try {
    m = decode(frames, limits);
  } catch (const ProtocolError&) {
    return 0;
  }
  context_checks(m);
  // Round trip: what we accept, we can say back identically (no exception allowed here).
  const std::string header = encode_header(m.request_id, m.body);
  std::vector<FrameView> again{{reinterpret_cast<const std::byte*>(header.data()), header.size()}};
  again.insert(again.end(), m.tensors.begin(), m.tensors.end());
  const DecodedMessage m2 = decode(again, limits);
  if (m2.kind != m.kind || m2.request_id != m.request_id || !(m2.body == m.body)) std::abort();
  return 0;
}
