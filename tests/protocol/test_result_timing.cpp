// result.timing (protocol v2): optional, strict when present, parts never more than the whole.
#include "test_helpers.hpp"

using namespace duet::protocol;
using namespace duet::protocol::test;

namespace {
RawMessage raw_result(const Result& r) { return raw(5, r, {tensor_bytes_of(r.hidden, 0x22)}); }
}  // namespace

TEST_CASE("result timing round-trips, and a result without it is still a result") {
  const Result timed = sample_timed_result();
  const auto d = raw_result(timed).decode();
  REQUIRE(d.as<Result>().timing.has_value());
  CHECK(d.as<Result>().timing->queue_us == 200);
  CHECK(d.as<Result>().timing->stage_us == std::vector<std::uint64_t>{300, 500});
  CHECK(d.as<Result>() == timed);

  const auto u = raw_result(sample_result()).decode();
  CHECK_FALSE(u.as<Result>().timing.has_value());
  CHECK_FALSE(u.as<Result>() == timed);

  // all of the daemon's time in its parts is fine (nothing left for inputs and replies)
  Result whole = sample_result();
  whole.timing = ResultTiming{234, {1000}};
  CHECK(raw_result(whole).decode().as<Result>() == whole);
}

TEST_CASE("encode refuses a timing the peer would refuse") {
  Result r = sample_result();
  r.timing = ResultTiming{0, {}};
  CHECK_PROTOCOL_ERROR(raw_result(r), ErrorCode::bad_message);  // no stage
  r.timing = ResultTiming{0, std::vector<std::uint64_t>(kMaxTimedStages + 1, 1)};
  CHECK_PROTOCOL_ERROR(raw_result(r), ErrorCode::bad_message);  // more stages than allowed
  r.timing = ResultTiming{1000, {200, 35}};
  CHECK_PROTOCOL_ERROR(raw_result(r), ErrorCode::bad_message);  // 1235 us of 1234
  r.timing = ResultTiming{~std::uint64_t{0}, {2}};
  CHECK_PROTOCOL_ERROR(raw_result(r), ErrorCode::bad_message);  // the sum overflows
}

TEST_CASE("decode checks every timing field a peer sends") {
  const RawMessage good = raw_result(sample_timed_result());
  CHECK_NOTHROW(good.decode());
  using Surgery = std::function<void(msgpack::object&, msgpack::zone&)>;
  auto timing_edit = [&](const Surgery& edit) {
    return edited(good, [=](msgpack::object& root, msgpack::zone& z) { edit(field(body_of(root), "timing"), z); });
  };
  msgpack::zone z0;
  // wrong types
  CHECK_PROTOCOL_ERROR(edited(good, [](msgpack::object& root, msgpack::zone&) {
                         field(body_of(root), "timing") = msgpack::object(5);
                       }).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone&) { field(t, "queue_us") = msgpack::object(-1); })
                           .decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone&) { field(t, "stage_us") = msgpack::object(7); })
                           .decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone&) {
                         field(t, "stage_us").via.array.ptr[1] = msgpack::object(2.5);
                       }).decode(),
                       ErrorCode::bad_message);
  // missing, unknown, empty, more than the whole
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone&) { remove_field(t, "queue_us"); }).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone& z) {
                         add_field(t, z, "gpu_us", msgpack::object(1));
                       }).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone&) { field(t, "stage_us").via.array.size = 0; })
                           .decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(timing_edit([](msgpack::object& t, msgpack::zone&) { field(t, "queue_us") = msgpack::object(735); })
                           .decode(),
                       ErrorCode::bad_message);
  CHECK_NOTHROW(timing_edit([](msgpack::object& t, msgpack::zone&) { field(t, "queue_us") = msgpack::object(434); })
                    .decode());
  // a key beside timing that the grammar does not have is still refused
  CHECK_PROTOCOL_ERROR(edited(good, [](msgpack::object& root, msgpack::zone& z) {
                         add_field(body_of(root), z, "timings", msgpack::object(1));
                       }).decode(),
                       ErrorCode::bad_message);
  (void)z0;
}

TEST_CASE("the refusal of an impossible timing says what it saw") {
  Result r = sample_result();
  r.timing = ResultTiming{1000, {200, 35}};
  try {
    raw_result(r);
    FAIL("expected a ProtocolError");
  } catch (const ProtocolError& e) {
    const std::string what = e.what();
    CHECK(what.find("queue 1000 us") != std::string::npos);
    CHECK(what.find("stages 235 us") != std::string::npos);
    CHECK(what.find("1234 us") != std::string::npos);
  }
}
