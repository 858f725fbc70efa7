// What the socket thread checks before it queues a request: the session's owner and the bytes
// queued per key and in all, given back on whatever path a request ends.
#include <doctest/doctest.h>

#include "cloud/intake.hpp"
#include "protocol/errors.hpp"

using namespace duet::cloud;
using duet::protocol::ErrorCode;
using duet::protocol::ProtocolError;

namespace {
ErrorCode code_of(Intake& in, const std::string& owner, uint64_t session, uint64_t bytes, Ticket* keep = nullptr) {
  try {
    Ticket t = in.admit(owner, session, bytes);
    if (keep) *keep = std::move(t);
  } catch (const ProtocolError& e) {
    return e.code();
  }
  return ErrorCode::ok;
}
}  // namespace

TEST_CASE("Intake: sessions by owner; bytes bounded per key and in all; tickets give them back") {
  Intake in({/*all*/ 100, /*per key*/ 60});
  in.opened(7, "key:a");
  CHECK(code_of(in, "key:a", 7, 10) == ErrorCode::ok);
  CHECK(code_of(in, "key:b", 7, 10) == ErrorCode::unknown_session);  // another key's session
  CHECK(code_of(in, "key:a", 8, 10) == ErrorCode::unknown_session);  // never opened
  CHECK(in.queued_bytes() == 0);  // a refused or ended request holds nothing
  Ticket t1, t2, t3;
  CHECK(code_of(in, "key:a", 7, 50, &t1) == ErrorCode::ok);
  CHECK(code_of(in, "key:a", 7, 20) == ErrorCode::server_busy);  // 70 > 60 for key a
  CHECK(code_of(in, "key:b", 0, 45, &t2) == ErrorCode::ok);      // opens pass session 0
  CHECK(code_of(in, "key:c", 0, 10) == ErrorCode::server_busy);  // 105 > 100 in all
  CHECK(in.queued_bytes() == 95);
  Ticket moved = std::move(t1);  // moving keeps the bytes held once
  CHECK(in.queued_bytes("key:a") == 50);
  moved.reset();
  CHECK(in.queued_bytes("key:a") == 0);
  CHECK(code_of(in, "key:a", 7, 55, &t3) == ErrorCode::ok);
  in.closed(7);
  CHECK(code_of(in, "key:a", 7, 1) == ErrorCode::unknown_session);
  t2.reset();
  t3.reset();
  CHECK(in.queued_bytes() == 0);
}
