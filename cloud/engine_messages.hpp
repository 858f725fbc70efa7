#pragma once
// What the socket thread hands the engine thread and what comes back: decoded session requests
// with the frames that hold their tensor bytes, and replies ready to send. No LibTorch.
#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "cloud/intake.hpp"
#include "protocol/messages.hpp"

namespace duet::cloud {

struct EngineRequest {
  std::string peer;   // routing id: where the reply goes
  std::string owner;  // whom the sessions belong to (see SessionTable)
  uint64_t request_id = 0;
  protocol::WireDtype wire_dtype = protocol::WireDtype::f32;  // the peer's hello settled it
  std::variant<protocol::OpenSession, protocol::Forward, protocol::CloseSession> body;
  std::vector<zmq::message_t> frames;  // the message's frames; a forward's tensor is frames[tensor_frame]
  size_t tensor_frame = 0;
  std::chrono::steady_clock::time_point received;
  Ticket ticket;  // the queued bytes it holds (cloud/intake.hpp), given back when it is done
};

struct EngineReply {
  std::string peer;
  uint64_t request_id = 0;
  protocol::MessageBody body;
  std::vector<zmq::message_t> tensors;
  std::chrono::steady_clock::time_point ready;  // when the engine formed it (the hand-back's start)
};

}  // namespace duet::cloud
