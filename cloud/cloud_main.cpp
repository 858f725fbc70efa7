// duet-cloud: the daemon that runs a model's transformer blocks for edge clients.
//   duet-cloud --config configs/cloud.toml [overrides]
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "cloud/cloud_config.hpp"
#include "common/setting_flags.hpp"
#include "cloud/server.hpp"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

// The last resort of "stopped within 1 s of SIGTERM": the server stops a step between blocks,
// but one block of a huge prefill on a slow CPU can take seconds. Once stopping has taken
// kStopLimit, the process exits at once (its clients see the connection close; edges resume when
// they reconnect); a normal stop takes a fraction of that and ends the watchdog first.
class StopWatchdog {
 public:
  static constexpr auto kStopLimit = std::chrono::milliseconds(700);
  StopWatchdog() : thread_([this] { watch(); }) {}
  ~StopWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_ && !g_stop.load()) cv_.wait_for(lock, std::chrono::milliseconds(20));
    if (done_ || cv_.wait_for(lock, kStopLimit, [this] { return done_; })) return;  // stopped in time
    spdlog::warn("still stopping {} ms after the signal (a long step under way): exiting now", kStopLimit.count());
    spdlog::default_logger()->flush();
    std::fflush(stdout);
    std::_Exit(0);
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-cloud: serves a model's transformer blocks to duet edge clients over CurveZMQ"};
  std::string config_path;
  app.add_option("-c,--config", config_path, "TOML config file (see configs/cloud.toml)")->check(CLI::ExistingFile);
  std::string log_level = "info";
  duet::settings::FlagsGiven<duet::cloud::CloudConfig> given;  // applied over the file's values
  duet::settings::add_flags(app, duet::cloud::cloud_settings(), ~0u, given);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  CLI11_PARSE(app, argc, argv);

  try {
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("[%H:%M:%S.%e] [cloud] [%^%l%$] %v");
    duet::cloud::CloudConfig cfg;
    if (!config_path.empty()) cfg = duet::cloud::CloudConfig::from_toml_file(config_path);
    given.apply(cfg);

    StopWatchdog watchdog;  // outlives the server: its destruction is part of stopping
    duet::cloud::Server server(cfg);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("listening on %s\n", server.endpoint().c_str());
    std::fflush(stdout);
    server.run(g_stop);
    spdlog::info("stopped cleanly");
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
