// recv_bounded: a message with too many frames is drained, kept short, and still refused by
// decode() as too_large; the next message arrives intact.
#include <doctest/doctest.h>

#include <zmq_addon.hpp>

#include "protocol/recv.hpp"
#include "test_helpers.hpp"

using namespace duet::protocol;
using namespace duet::protocol::test;

TEST_CASE("recv_bounded keeps at most `keep` frames and drains the rest") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair);
  zmq::socket_t b(ctx, zmq::socket_type::pair);
  a.set(zmq::sockopt::linger, 0);
  b.set(zmq::sockopt::linger, 0);
  a.bind("inproc://recv-bounded");
  b.connect("inproc://recv-bounded");

  std::vector<zmq::message_t> out;
  CHECK_FALSE(recv_bounded(b, out, 5, zmq::recv_flags::dontwait).has_value());

  // a hello followed by 99 junk frames
  auto flood = encode(1, sample_hello());
  for (int i = 0; i < 99; ++i) flood.emplace_back(std::string_view("junk"));
  zmq::send_multipart(a, flood);
  zmq::send_multipart(a, encode(2, CloseSession{5}));

  const std::size_t keep = kMaxFramesPerMessage + 1;
  auto n = recv_bounded(b, out, keep);
  REQUIRE(n.has_value());
  CHECK(*n == 100);
  CHECK(out.size() == keep);
  CHECK_PROTOCOL_ERROR(decode(out), ErrorCode::too_large);

  n = recv_bounded(b, out, keep);
  REQUIRE(n.has_value());
  CHECK(*n == 1);
  CHECK(decode(out).as<CloseSession>().session_id == 5);
}
