#include "protocol/errors.hpp"

#include <cstdio>

namespace duet::protocol {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::ok: return "ok";
    case ErrorCode::bad_message: return "bad_message";
    case ErrorCode::unsupported_version: return "unsupported_version";
    case ErrorCode::model_mismatch: return "model_mismatch";
    case ErrorCode::bad_dtype: return "bad_dtype";
    case ErrorCode::bad_shape: return "bad_shape";
    case ErrorCode::frame_size_mismatch: return "frame_size_mismatch";
    case ErrorCode::too_large: return "too_large";
    case ErrorCode::unknown_session: return "unknown_session";
    case ErrorCode::position_gap: return "position_gap";
    case ErrorCode::session_limit: return "session_limit";
    case ErrorCode::position_limit: return "position_limit";
    case ErrorCode::kv_memory_limit: return "kv_memory_limit";
    case ErrorCode::not_authorized: return "not_authorized";
    case ErrorCode::internal: return "internal";
    case ErrorCode::shutting_down: return "shutting_down";
    case ErrorCode::handshake_required: return "handshake_required";
    case ErrorCode::session_busy: return "session_busy";
    case ErrorCode::quota_exceeded: return "quota_exceeded";
    case ErrorCode::non_finite: return "non_finite";
    case ErrorCode::server_busy: return "server_busy";
    case ErrorCode::stage_unavailable: return "stage_unavailable";
  }
  return "unknown_error";
}

bool is_known(ErrorCode code) noexcept { return to_string(code) != "unknown_error"; }

std::string printable(std::string_view text, std::size_t max_chars) {
  std::string out;
  out.reserve(text.size() < max_chars ? text.size() : max_chars);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace duet::protocol
