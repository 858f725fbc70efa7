#pragma once
// Every check a session request passes before it may run, in one place: the forward's shape and
// dtype against what the hello settled, the session's owner, its positions, the KV pool and the
// key's quota. Each failure throws protocol::ProtocolError with a code and a sentence; nothing
// is changed by a refused request. No LibTorch.
#include <cstdint>

#include "cloud/session_table.hpp"
#include "protocol/messages.hpp"
#include "protocol/validate.hpp"

namespace duet::cloud {

struct AdmissionContract {
  uint32_t hidden_size = 0;
  uint32_t max_positions_per_forward = 0;
};

// A forward that may run: its session now holds KV blocks for [0, start + n).
Session& admit_forward(SessionTable& sessions, const std::string& owner, const protocol::Forward& m,
                       protocol::WireDtype wire_dtype, const AdmissionContract& contract);

}  // namespace duet::cloud
