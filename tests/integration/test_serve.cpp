// duet-edge serve tested as its users meet it: a real daemon and a real `duet-edge serve`, driven
// by a standard-library Python OpenAI-style client (openai_client.py), by curl reading the SSE
// stream, and by headless Chromium on the music page (music_page_check.py, screenshot under
// build/test-output/). The daemon's own log shows that every request's session was closed.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace duet::itest;

namespace {

// duet-edge serve; waits for its "serving MODEL on http://HOST:PORT" line
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) : proc_(edge_binary(), with_serve(args)) {
    const auto end = std::chrono::steady_clock::now() + 60s;
    static const std::regex line(R"(serving \S+ on (http://[0-9.]+:[0-9]+))");
    while (true) {
      std::smatch m;
      const std::string out = proc_.out();
      if (std::regex_search(out, m, line)) {
        url_ = m[1];
        return;
      }
      if (!proc_.running()) throw std::runtime_error("duet-edge serve exited before serving:\n" + log());
      if (std::chrono::steady_clock::now() >= end)
        throw std::runtime_error("duet-edge serve did not start within 60 s:\n" + log());
      std::this_thread::sleep_for(20ms);
    }
  }
  const std::string& url() const { return url_; }
  std::string log() const { return "--- serve stdout\n" + proc_.out() + "--- serve stderr\n" + proc_.err(); }
  std::optional<int> stop() {
    proc_.signal(SIGTERM);
    return proc_.wait_for(15s);
  }

 private:
  static std::vector<std::string> with_serve(std::vector<std::string> a) {
    a.insert(a.begin(), "serve");
    return a;
  }
  ChildProcess proc_;
  std::string url_;
};

std::vector<std::string> split_args(const std::string& endpoint) {
  const auto& k = keys();
  return {"--model", abc_model(), "--server", endpoint, "--server-key", k.server_public.string(), "--client-key",
          k.edge_secret.string(), "--listen", "127.0.0.1:0"};
}

ProcessResult python(const std::string& script, const std::vector<std::string>& args, std::chrono::milliseconds limit) {
  std::vector<std::string> a = {source_path("tests/integration/" + script)};
  a.insert(a.end(), args.begin(), args.end());
  return run_process("/usr/bin/env", [&] {
    std::vector<std::string> v = {"python3"};
    v.insert(v.end(), a.begin(), a.end());
    return v;
  }(), limit);
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

struct HttpReply {
  int status = 0;  // 0: no reply in time
  std::string head, body;
};

// One HTTP/1.1 request on its own connection (Connection: close). `headers` replace the defaults
// of the same name (Host, Content-Type); a body gets its Content-Length.
HttpReply http(int port, const std::string& method, const std::string& path, const std::string& body = "",
               std::vector<std::string> headers = {}, int timeout_s = 60) {
  auto has = [&](const std::string& name) {
    for (const auto& h : headers)
      if (h.rfind(name + ":", 0) == 0) return true;
    return false;
  };
  if (!has("Host")) headers.push_back("Host: 127.0.0.1:" + std::to_string(port));
  if (!body.empty() && !has("Content-Type")) headers.push_back("Content-Type: application/json");
  std::string req = method + " " + path + " HTTP/1.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  const int fd = connect_to(port);
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t sent = 0;
  while (sent < req.size()) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) and close before reading it all
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, static_cast<size_t>(n));
  ::close(fd);
  HttpReply r;
  const auto end = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(reply.substr(9, 3));
  r.head = reply.substr(0, end);
  r.body = reply.substr(end + 4);
  return r;
}

// The generated text of a reply: every "text" field, in order (whole replies and SSE chunks);
// skip: that many first fields left out (the music page's tune header).
std::string texts(const std::string& body, size_t skip = 0) {
  static const std::regex field(R"re("text":"((?:[^"\\]|\\.)*)")re");
  std::string out;
  for (std::sregex_iterator it(body.begin(), body.end(), field), end; it != end; ++it)
    if (skip == 0) out += (*it)[1];
    else --skip;
  return out;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("duet-edge serve over a daemon: OpenAI API, SSE, two streams at once, a dropped stream, the music page") {
  DaemonProcess d(secure_args(abc_model(), {"--devices", "cpu"}));
  ServeProcess s([&] {
    auto a = split_args(d.endpoint());
    a.insert(a.end(), {"--max-active", "2"});
    return a;
  }());
  INFO(s.log());
  INFO(d.log());

  SUBCASE("a stdlib-only OpenAI client") {
    auto r = python("openai_client.py", {"--base", s.url(), "--model-hint", "abc-folk", "api", "music", "concurrent",
                                         "cancel"},
                    240s);
    INFO("client stdout: " << r.out);
    INFO("client stderr: " << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("music: ok") != std::string::npos);
    CHECK(r.out.find("cancel: ok") != std::string::npos);
    // every session the requests opened was closed by the edge, none left to expire; the log
    // line of the last close can trail the client's check by a moment
    std::string log;
    for (int i = 0; i < 100; ++i) {
      log = d.log();
      if (count(log, " opened for ") == count(log, " closed (")) break;
      std::this_thread::sleep_for(20ms);
    }
    CHECK(count(log, " opened for ") >= 8);
    CHECK(count(log, " opened for ") == count(log, " closed ("));
    CHECK(count(log, " expired after ") == 0);
  }

  SUBCASE("curl reads the event stream") {
    const std::string body =
        R"({"model":"abc-folk","prompt":"S:oneills-reel\nM:4/4\nL:1/8\nK:D\n","max_tokens":24,"temperature":0,)"
        R"("stream":true,"stream_options":{"include_usage":true}})";
    auto r = run_process("/usr/bin/curl", {"-sS", "-N", "--max-time", "60", "-H", "Content-Type: application/json",
                                           "-d", body, s.url() + "/v1/completions"},
                         90s);
    INFO("curl stdout: " << r.out);
    INFO("curl stderr: " << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("data: {", 0) == 0);
    CHECK(count(r.out, "data: {") >= 10);
    CHECK(count(r.out, "\"finish_reason\":\"") == 1);
    CHECK(r.out.find("\"usage\":{\"completion_tokens\":") != std::string::npos);
    const std::string done = "data: [DONE]\n\n";
    REQUIRE(r.out.size() > done.size());
    CHECK(r.out.compare(r.out.size() - done.size(), done.size(), done) == 0);
  }

  SUBCASE("headless Chromium on the music page") {
    const fs::path out_dir = fs::path(DUET_BINARY_DIR) / "test-output";
    fs::create_directories(out_dir);
    const std::string shot = (out_dir / "music_page.png").string();
    fs::remove(shot);
    auto r = python("music_page_check.py", {"--url", s.url() + "/", "--screenshot", shot, "--timeout", "150"}, 240s);
    INFO("page check stdout: " << r.out);
    INFO("page check stderr: " << r.err);
    REQUIRE_MESSAGE(r.status == 0, "the music page check failed (see its stderr above)");
    CHECK(fs::file_size(shot) > 10000);
  }

  CHECK(s.stop() == 0);
  CHECK(d.stop() == 0);
}

TEST_CASE("duet-edge serve --local --api-key: the key is required, and the blocks run in process") {
  ServeProcess s({"--model", abc_model(), "--local", "--listen", "127.0.0.1:0", "--api-key", "sk-duet-test"});
  INFO(s.log());
  auto r = python("openai_client.py", {"--base", s.url(), "--key", "sk-duet-test", "auth"}, 120s);
  INFO("client stdout: " << r.out);
  INFO("client stderr: " << r.err);
  CHECK(r.status == 0);
  CHECK(s.stop() == 0);
}

TEST_CASE("duet-edge serve: a listen address in use, and no daemon, are clear errors") {
  ServeProcess first({"--model", abc_model(), "--local", "--listen", "127.0.0.1:0"});
  const std::string port = first.url().substr(first.url().rfind(':') + 1);
  auto busy = run_process(edge_binary(), {"serve", "--model", abc_model(), "--local", "--listen", "127.0.0.1:" + port},
                          60s);
  CHECK(busy.status == 1);
  CHECK(busy.err.find("cannot listen on 127.0.0.1:" + port) != std::string::npos);
  const auto& k = keys();
  auto nodaemon = run_process(edge_binary(), {"serve", "--model", abc_model(), "--server",
                                              "tcp://127.0.0.1:" + std::to_string(closed_port()), "--server-key",
                                              k.server_public.string(), "--client-key", k.edge_secret.string(),
                                              "--timeout-ms", "1500", "--listen", "127.0.0.1:0"},
                              60s);
  CHECK(nodaemon.status == 2);
  CHECK(nodaemon.err.find("no duet-cloud daemon reachable") != std::string::npos);
  CHECK(first.stop() == 0);
}

// Issue 23: a NotaGen model writes pieces through duet-edge generate's job; serve's token-level
// routes refuse it at start, saying why and what to run instead, before any daemon is contacted
// (nothing listens on the closed port: a contact would be exit 2, "no duet-cloud daemon reachable").
TEST_CASE("duet-edge serve refuses a NotaGen model with a sentence") {
  const std::string tiny = source_path("tests/fixtures/notagen/tiny");
  auto r = run_process(edge_binary(), {"serve", "--model", tiny, "--server",
                                       "tcp://127.0.0.1:" + std::to_string(closed_port()), "--insecure",
                                       "--timeout-ms", "1500", "--listen", "127.0.0.1:0"},
                       60s);
  CHECK(r.status == 1);
  CHECK(r.err.find("duet-edge serve does not serve NotaGen models: " + tiny + " is one") != std::string::npos);
  CHECK(r.err.find("write its pieces with duet-edge generate --model " + tiny) != std::string::npos);
  CHECK(r.out.find("serving") == std::string::npos);
}

// Issue 23, defects 1-3: the model's sampling defaults reach the API and the page; the pooled
// cloud connection outlives the daemon's idle timeout and a restart; /health follows the daemon;
// SIGTERM stops within 1 s while a request waits on a dead daemon.
TEST_CASE("duet-edge serve: model defaults, a daemon idle timeout and restart, /health, a bounded stop") {
  std::vector<std::string> daemon_args = secure_args(abc_model(), {"--devices", "cpu", "--idle-timeout", "2"});
  auto d = std::make_unique<DaemonProcess>(daemon_args);
  const std::string endpoint = d->endpoint();
  ServeProcess s(split_args(endpoint));
  INFO(s.log());
  const int port = port_of(s.url());
  const std::string prompt = R"("prompt":"S:oneills-reel\nM:4/4\nL:1/8\nK:D\n","max_tokens":32)";
  auto complete = [&](const std::string& extra) {
    return http(port, "POST", "/v1/completions", "{" + prompt + extra + "}");
  };

  // 1. duet.json's sampling (not greedy): two seeds, two tunes; the same seed, the same tune
  const auto info = http(port, "GET", "/api/music");
  REQUIRE(info.status == 200);
  CHECK(nlohmann::json::parse(info.body)["temperature"].get<double>() > 0);
  // the stop reasons' words, for the page's status: the CLI's (edge/client/stop_reason.hpp)
  const auto reasons = nlohmann::json::parse(info.body)["stop_reasons"];
  CHECK(reasons.size() == 6);
  CHECK(reasons["ending_rule"] == "the ending rule closed it at a bar line as the token budget ran out");
  CHECK(reasons["eos"] == "the model ended it");
  const auto a = complete(R"(,"seed":1)"), b = complete(R"(,"seed":2)"), a2 = complete(R"(,"seed":1)");
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 200);
  CHECK(texts(a.body) != texts(b.body));
  CHECK(texts(a.body) == texts(a2.body));
  auto tune = [&](int seed) {
    return http(port, "POST", "/api/music",
                R"({"style":"oneills-jig","max_tokens":40,"seed":)" + std::to_string(seed) + "}");
  };
  const auto t1 = tune(1), t2 = tune(2);
  REQUIRE(t1.status == 200);
  // what the model wrote, past the header (which names the seed)
  CHECK(!texts(t1.body, 1).empty());
  CHECK(texts(t1.body, 1) != texts(t2.body, 1));

  // 2. idle past the daemon's timeout: the pooled connection is greeted again
  std::this_thread::sleep_for(3500ms);
  const auto after_idle = complete(R"(,"seed":3)");
  INFO("after idle: " << after_idle.body);
  CHECK(after_idle.status == 200);
  CHECK(http(port, "GET", "/health").status == 200);

  // the daemon stops: /health says so (503); it comes back on the same endpoint: served again
  INFO(d->log());
  REQUIRE(d->stop() == 0);
  std::this_thread::sleep_for(1100ms);  // past the health answer's one-second reuse
  const auto down = http(port, "GET", "/health");
  CHECK(down.status == 503);
  CHECK(down.body.find("\"unavailable\"") != std::string::npos);
  for (auto& arg : daemon_args)
    if (arg == "tcp://127.0.0.1:*") arg = endpoint;
  d = std::make_unique<DaemonProcess>(daemon_args);
  const auto after_restart = complete(R"(,"seed":4)");
  INFO("after restart: " << after_restart.body);
  CHECK(after_restart.status == 200);
  std::this_thread::sleep_for(1100ms);  // past the health answer's one-second reuse
  CHECK(http(port, "GET", "/health").status == 200);

  // 3. the daemon dies with a request waiting on it; SIGTERM still ends serve within 1 s
  d->stop(SIGKILL);
  auto waiting = std::async(std::launch::async, [&] { return complete(R"(,"seed":5)"); });
  std::this_thread::sleep_for(300ms);
  const auto t0 = std::chrono::steady_clock::now();
  const auto code = s.stop();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  CHECK(code == 0);
  CHECK_MESSAGE(took.count() < 1000, "serve took " << took.count() << " ms to stop");
  waiting.wait();
}

// Issue 20, item 9: what a hostile page or client sends to a local `duet-edge serve`.
TEST_CASE("duet-edge serve hardening: nesting, body limit, origins, content type, wrong types, slow connections") {
  ServeProcess s({"--model", abc_model(), "--local", "--listen", "127.0.0.1:0", "--max-active", "4"});
  INFO(s.log());
  const int port = port_of(s.url());
  const std::string ok_body = R"({"prompt":"S:oneills-reel\nM:4/4\nL:1/8\nK:D\n","max_tokens":2})";

  SUBCASE("deeply nested JSON: 400, and the server lives on (was SIGSEGV)") {
    const std::string nested =
        R"({"prompt":[1,)" + std::string(100000, '[') + std::string(100000, ']') + "]}";
    CHECK(http(port, "POST", "/v1/completions", nested).status == 400);
    CHECK(http(port, "POST", "/api/music", R"({"style":)" + std::string(5000, '[') + std::string(5000, ']') + "}")
              .status == 400);
    CHECK(http(port, "GET", "/health").status == 200);
  }
  SUBCASE("a body over the limit is refused before it is read or tokenized") {
    const std::string big = R"({"prompt":")" + std::string(2 << 20, 'a') + R"(","max_tokens":1})";
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = http(port, "POST", "/v1/completions", big);
    CHECK(r.status == 413);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  }
  SUBCASE("a foreign page cannot drive it; a same-origin page and plain clients can") {
    const auto form = http(port, "POST", "/v1/completions", ok_body,
                           {"Origin: https://evil.example", "Content-Type: text/plain"});
    CHECK(form.status == 403);
    CHECK(http(port, "POST", "/v1/completions", ok_body, {"Content-Type: text/plain"}).status == 415);
    CHECK(http(port, "GET", "/health", "", {"Host: evil.example:" + std::to_string(port)}).status == 403);
    CHECK(http(port, "OPTIONS", "/v1/completions", "", {"Origin: https://evil.example"}).status == 403);
    const std::string self = "http://127.0.0.1:" + std::to_string(port);
    CHECK(http(port, "POST", "/v1/completions", ok_body, {"Origin: " + self}).status == 200);
    CHECK(http(port, "POST", "/v1/completions", ok_body).status == 200);
  }
  SUBCASE("wrong types are 400s (were 500)") {
    for (const std::string extra : {R"("temperature":1e400)", R"("stream":true,"stream_options":{"include_usage":"x"})",
                                    R"("response_format":"json")"}) {
      const auto r = http(port, "POST", "/v1/completions",
                          R"({"prompt":"K:D\n","max_tokens":1,)" + extra + "}");
      INFO(extra << " -> " << r.body);
      CHECK(r.status == 400);
    }
    CHECK(http(port, "POST", "/v1/completions", std::string(R"({"prompt":")") + "\xff\xfe" + R"("})").status == 400);
  }
  SUBCASE("/api/music's errors name the parameter that was wrong (all were 'style')") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"("style":"polka-from-mars")", "style"},
        {R"("meter":"7/x")", "meter"},
        {R"("unit":"1/3")", "unit"},
        {R"("key":"H")", "key"},
        {R"("key":5)", "key"},
        {R"("constraint":"yes")", "constraint"},
        {R"("temperature":5)", "temperature"},
        {R"("top_k":-1)", "top_k"},
        {R"("top_p":0)", "top_p"},
        {R"("seed":"x")", "seed"},
        {R"("max_tokens":0)", "max_tokens"},
    };
    for (const auto& [field, param] : cases) {
      const auto r = http(port, "POST", "/api/music", R"({"style":"oneills-jig",)" + field + "}");
      INFO(field << " -> " << r.status << " " << r.body);
      CHECK(r.status == 400);
      const auto j = nlohmann::json::parse(r.body, nullptr, false);
      REQUIRE(j.contains("error"));
      CHECK(j["error"]["param"] == param);
      CHECK(j["error"]["code"] == "invalid_value");
    }
  }
  SUBCASE("node_modules and package*.json are not served; the page's files are") {
    CHECK(http(port, "GET", "/web/package.json").status == 404);
    CHECK(http(port, "GET", "/web/package-lock.json").status == 404);
    CHECK(http(port, "GET", "/web/node_modules/abcjs/package.json").status == 404);
    CHECK(http(port, "GET", "/web/music.js").status == 200);
  }
  SUBCASE("16 slow connections do not starve /health") {
    std::vector<int> slow;
    for (int i = 0; i < 16; ++i) {
      slow.push_back(connect_to(port));
      const std::string part = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      CHECK(::send(slow.back(), part.data(), part.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(part.size()));
    }
    std::this_thread::sleep_for(200ms);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(http(port, "GET", "/health", "", {}, 5).status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    for (int fd : slow) ::close(fd);
  }
  CHECK(s.stop() == 0);
}

TEST_CASE("duet-edge serve --allow-origin: that page gets llama-server's CORS answer") {
  ServeProcess s({"--model", abc_model(), "--local", "--listen", "127.0.0.1:0", "--allow-origin",
                  "http://localhost:3000"});
  INFO(s.log());
  const int port = port_of(s.url());
  const auto pre = http(port, "OPTIONS", "/v1/completions", "", {"Origin: http://localhost:3000"});
  CHECK(pre.status == 204);
  CHECK(pre.head.find("Access-Control-Allow-Origin: http://localhost:3000") != std::string::npos);
  CHECK(pre.head.find("Access-Control-Allow-Headers:") != std::string::npos);
  CHECK(http(port, "OPTIONS", "/v1/completions", "", {"Origin: http://localhost:4000"}).status == 403);
  CHECK(s.stop() == 0);
}
