// duet-edge serve's request checks against hostile and careless input (issue 20, item 9): deep
// nesting, numbers out of range, wrong types, invalid UTF-8 — each a 400 with OpenAI's error
// object, never a crash or a 500 — and which browsers' requests are answered (request_guard).
#include <doctest/doctest.h>

#include <string>

#include "edge/server/openai_json.hpp"
#include "edge/server/request_guard.hpp"

using namespace duet::edge::server;
using nlohmann::json;

namespace {

// The ApiError a body gets; anything else thrown (nlohmann's type_error, a crash) fails the test.
ApiError refusal(const std::string& body, bool chat = false) {
  try {
    parse_request(body, chat);
  } catch (const ApiError& e) {
    // the reply body must be writable whatever the message holds
    CHECK_NOTHROW((void)json_text(e.body()));
    return e;
  }
  FAIL("accepted: " << body.substr(0, 80));
  return ApiError(0, "");
}

RequestFacts facts(const std::string& method, std::optional<std::string> host, std::optional<std::string> origin,
                   std::optional<std::string> type = std::nullopt) {
  RequestFacts f;
  f.method = method;
  f.path = "/v1/completions";
  f.host = std::move(host);
  f.origin = std::move(origin);
  f.content_type = std::move(type);
  return f;
}

}  // namespace

TEST_CASE("deeply nested JSON is refused by depth, without walking it (was SIGSEGV)") {
  // the 200 KB body of the issue: valid JSON, 100,000 levels deep (the old error message dumped it
  // recursively and overflowed the stack)
  const std::string body = R"({"prompt":[1,)" + std::string(100000, '[') + std::string(100000, ']') + "]}";
  const ApiError e = refusal(body);
  CHECK(e.status() == 400);
  CHECK(std::string(e.what()).find("deeper than 64") != std::string::npos);
  CHECK(refusal(R"({"prompt":[1,)" + std::string(100000, '[')).status() == 400);  // unterminated too
  // a valid but deep value inside a field whose error message names it: the message stays short
  std::string ok_depth = R"({"prompt":[1,)" + std::string(60, '[') + std::string(60, ']') + "]}";
  const ApiError e2 = refusal(ok_depth);
  CHECK(e2.param() == "prompt");
  CHECK(std::string(e2.what()).size() < 200);
  // brackets inside strings do not count
  CHECK_NOTHROW(check_json_depth(R"({"prompt":")" + std::string(1000, '[') + R"("})", 4));
}

TEST_CASE("wrong types and out-of-range numbers are 400s naming the field (were 500)") {
  CHECK(refusal(R"({"prompt":"x","temperature":1e400})").status() == 400);
  const ApiError usage = refusal(R"({"prompt":"x","stream":true,"stream_options":{"include_usage":"yes"}})");
  CHECK(usage.status() == 400);
  CHECK(usage.param() == "stream_options.include_usage");
  CHECK(refusal(R"({"prompt":"x","stream_options":"yes"})").param() == "stream_options");
  const ApiError rf = refusal(R"({"prompt":"x","response_format":"json"})");
  CHECK(rf.status() == 400);
  CHECK(rf.param() == "response_format");
  CHECK(refusal(R"({"prompt":"x","response_format":{"type":7}})").param() == "response_format");
  CHECK(refusal(R"({"prompt":"x","model":7})").param() == "model");
  CHECK(refusal(R"({"messages":[{"role":"user","content":[{"type":1,"text":"a"}]}]})", true).status() == 400);
  CHECK(refusal(R"({"messages":[{"role":"user","content":7}]})", true).status() == 400);
  // accepted forms still read
  const auto r = parse_request(R"({"prompt":"x","stream":true,"stream_options":{"include_usage":true},)"
                               R"("response_format":{"type":"text"}})",
                               false);
  CHECK(r.include_usage);
}

TEST_CASE("invalid UTF-8 in a body is a 400 whose reply can be written (was 500)") {
  const std::string bad = std::string(R"({"prompt":")") + "\xff\xfe" + R"("})";
  const ApiError e = refusal(bad);
  CHECK(e.status() == 400);
  CHECK(json_text(e.body()).find("not valid JSON") != std::string::npos);
  // and a value with invalid UTF-8 as an error message shows it replaced, not thrown
  CHECK_NOTHROW((void)brief(json(std::string("\xff"))));
}

TEST_CASE("brief: scalars shown, containers named, long text cut") {
  CHECK(brief(json(3)) == "3");
  CHECK(brief(json::array({1, 2})) == "an array");
  CHECK(brief(json::object()) == "an object");
  CHECK(brief(json(std::string(100, 'a'))).size() == 40);
}

TEST_CASE("request guard: Host on a loopback server, Origin, CORS preflight, JSON bodies") {
  GuardPolicy loop;  // listening on 127.0.0.1
  SUBCASE("same-origin page and plain clients pass") {
    CHECK_FALSE(check_request(loop, facts("POST", "127.0.0.1:8080", std::nullopt, "application/json")).refuse);
    CHECK_FALSE(check_request(loop, facts("POST", "localhost:8080", "http://localhost:8080",
                                          "application/json; charset=utf-8"))
                    .refuse);
    CHECK_FALSE(check_request(loop, facts("GET", "[::1]:8080", std::nullopt)).refuse);
    CHECK_FALSE(check_request(loop, facts("GET", std::nullopt, std::nullopt)).refuse);  // HTTP/1.0
  }
  SUBCASE("a foreign page is refused, whatever its content type") {
    auto v = check_request(loop, facts("POST", "127.0.0.1:8080", "https://evil.example", "text/plain"));
    REQUIRE(v.refuse);
    CHECK(v.refuse->status() == 403);
    CHECK(v.refuse->code() == "origin_not_allowed");
    CHECK(check_request(loop, facts("OPTIONS", "127.0.0.1:8080", "https://evil.example")).refuse);
    CHECK(check_request(loop, facts("POST", "127.0.0.1:8080", "null", "application/json")).refuse);
    // same host, other port: another origin
    CHECK(check_request(loop, facts("POST", "127.0.0.1:8080", "http://127.0.0.1:9999", "application/json")).refuse);
  }
  SUBCASE("DNS rebinding: a foreign Host on a loopback server") {
    auto v = check_request(loop, facts("GET", "evil.example:8080", "http://evil.example:8080"));
    REQUIRE(v.refuse);
    CHECK(v.refuse->code() == "host_not_allowed");
    GuardPolicy wide;
    wide.loopback_only_hosts = false;  // listening on 0.0.0.0: names unknown, Host not checked
    CHECK_FALSE(check_request(wide, facts("GET", "studio.lan:8080", std::nullopt)).refuse);
  }
  SUBCASE("an allowed origin gets llama-server's CORS answer") {
    GuardPolicy p;
    p.allowed_origins = {"http://localhost:3000"};
    auto pre = check_request(p, facts("OPTIONS", "127.0.0.1:8080", "http://localhost:3000"));
    CHECK_FALSE(pre.refuse);
    CHECK(pre.preflight);
    bool origin = false, methods = false;
    for (const auto& [k, v] : pre.headers) {
      origin = origin || (k == "Access-Control-Allow-Origin" && v == "http://localhost:3000");
      methods = methods || k == "Access-Control-Allow-Methods";
    }
    CHECK(origin);
    CHECK(methods);
    p.allowed_origins = {"*"};
    CHECK_FALSE(check_request(p, facts("POST", "127.0.0.1:8080", "https://any.example", "application/json")).refuse);
  }
  SUBCASE("POST bodies must be JSON") {
    for (const char* t : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
      auto v = check_request(loop, facts("POST", "127.0.0.1:8080", std::nullopt, t));
      REQUIRE(v.refuse);
      CHECK(v.refuse->status() == 415);
    }
    CHECK(check_request(loop, facts("POST", "127.0.0.1:8080", std::nullopt)).refuse);
  }
  CHECK(is_loopback_name("127.0.0.1"));
  CHECK_FALSE(is_loopback_name("127.evil.example"));
  CHECK(host_name("[::1]:80") == "::1");
  CHECK(host_name("LocalHost:8080") == "localhost");
}
