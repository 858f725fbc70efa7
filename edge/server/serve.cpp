#include "edge/server/serve.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

#include "edge/client/model_defaults.hpp"
#include "edge/client/piece_client.hpp"
#include "edge/server/http_routes.hpp"

#ifndef DUET_WEB_DIR
#define DUET_WEB_DIR "web"
#endif

namespace duet::edge::server {

namespace {

ServeOptions serve_options(const EdgeConfig& cfg) {
  ServeOptions o;
  const auto colon = cfg.listen.rfind(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("");
    o.host = cfg.listen.substr(0, colon);
    size_t used = 0;
    o.port = std::stoi(cfg.listen.substr(colon + 1), &used);
    if (used != cfg.listen.size() - colon - 1 || o.port < 0 || o.port > 65535 || o.host.empty())
      throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw std::invalid_argument("listen address '" + cfg.listen + "' is not HOST:PORT (e.g. 127.0.0.1:8080)");
  }
  if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']') o.host = o.host.substr(1, o.host.size() - 2);
  o.api_key = cfg.api_key;
  o.web_dir = cfg.web_dir.empty() ? DUET_WEB_DIR : cfg.web_dir;
  o.max_active = static_cast<size_t>(std::max<int64_t>(1, cfg.max_active));
  o.max_body_bytes = static_cast<size_t>(std::max<int64_t>(1024, cfg.max_body_bytes));
  o.allowed_origins = cfg.allowed_origins;
  return o;
}

// The self-pipe between the SIGINT/SIGTERM handler and the thread that stops the server. One per
// process at a time (the handler reads a global); restores the previous handlers when done.
class StopPipe {
 public:
  static constexpr char kSignal = 1, kDone = 2;
  StopPipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("duet-edge serve: pipe2 failed");
    write_fd_ = fds_[1];
    struct sigaction sa {};
    sa.sa_handler = [](int) {
      const char c = kSignal;
      (void)!::write(write_fd_, &c, 1);  // async-signal-safe
    };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopPipe() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    write_fd_ = -1;
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  StopPipe(const StopPipe&) = delete;
  StopPipe& operator=(const StopPipe&) = delete;
  char wait() const {  // blocks until a signal or wake()
    char c = 0;
    while (::read(fds_[0], &c, 1) < 0 && errno == EINTR) {
    }
    return c;
  }
  void wake(char why) const { (void)!::write(fds_[1], &why, 1); }

 private:
  static inline volatile int write_fd_ = -1;
  int fds_[2] = {-1, -1};
  struct sigaction old_int_ {}, old_term_ {};
};

bool loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// After a stop signal the process ends within kStopLimit whatever it is waiting on (a stream to
// a reader that stopped reading, a daemon that does not answer a close, an idle keep-alive
// connection): what is cut short is told, the daemon expires the sessions it keeps.
constexpr auto kStopLimit = std::chrono::milliseconds(800);

void arm_stop_watchdog() {
  std::thread([] {
    std::this_thread::sleep_for(kStopLimit);
    std::fprintf(stderr, "duet-edge serve: stopped (what was still running was cut short after %lld ms)\n",
                 static_cast<long long>(kStopLimit.count()));
    std::fflush(stderr);
    std::_Exit(0);
  }).detach();
}

}  // namespace

int run_serve(const EdgeConfig& given, bool local) {
  EdgeConfig cfg = given;
  // NotaGen's head is a character decoder that writes a patch per round trip, not a vocabulary
  // head: the OpenAI routes and the music page (token ids, a tokenizer) have nothing to run on.
  // Refused before anything is loaded or a daemon contacted.
  if (!cfg.model_path.empty() && is_notagen_model(cfg.model_path))
    throw std::invalid_argument("duet-edge serve does not serve NotaGen models: " + cfg.model_path +
                                " is one (config.json model_type \"notagen\"), which writes a patch of characters "
                                "per round trip, while serve's OpenAI routes and music page run token-level models; "
                                "write its pieces with duet-edge generate --model " + cfg.model_path);
  apply_model_defaults(cfg);  // the same defaults as generate (idempotent): duet.json under the config
  const ServeOptions o = serve_options(cfg);
  // SIGINT/SIGTERM: a handler (whichever thread the kernel picks runs it) writes to a pipe that one
  // thread waits on, and that thread stops the server. Not a signal mask + sigwait: a thread some
  // library started before the mask would take the signal's default action and kill the process.
  StopPipe stop;

  EdgeClient client(cfg, local);
  if (!client.tokenizer())
    throw std::invalid_argument(cfg.model_path + " has no tokenizer.json: duet-edge serve needs one to read prompts");
  ServeContext ctx(client, o, client.default_options());
  ctx.model_id = std::filesystem::path(cfg.model_path).lexically_normal().filename().string();
  if (ctx.model_id.empty()) ctx.model_id = std::filesystem::path(cfg.model_path).parent_path().filename().string();
  ctx.created = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  ctx.music = MusicPromptSpec::from_model_dir(cfg.model_path);
  try {
    ctx.chat = ChatTemplate::from_model_dir(cfg.model_path);
  } catch (const std::invalid_argument& e) {
    ctx.chat_error = std::string("/v1/chat/completions is not available: ") + e.what();
  }

  ApiServer api(ctx);
  const int port = api.bind();
  if (!loopback(o.host) && o.api_key.empty())
    std::fprintf(stderr, "duet-edge serve: warning: listening on %s with no API key: anyone who reaches this port "
                         "can generate; set [serve] api_key or --api-key\n", o.host.c_str());
  std::thread stopper([&] {
    if (stop.wait() != StopPipe::kSignal) return;
    arm_stop_watchdog();
    api.stop();
  });
  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  std::printf("duet-edge: serving %s on http://%s:%d (%s; chat: %s; music page: %s)\n", ctx.model_id.c_str(),
              host.c_str(), port, local ? "local" : ("blocks on " + cfg.server).c_str(),
              ctx.chat ? to_string(ctx.chat->form()) : "none", ctx.music ? "yes" : "no");
  std::fflush(stdout);
  api.run();
  // stopped by a signal; if run() ended another way, wake the waiting thread ourselves
  stop.wake(StopPipe::kDone);
  stopper.join();
  std::fprintf(stderr, "duet-edge serve: stopped\n");
  std::fflush(stderr);
  return 0;
}

}  // namespace duet::edge::server
