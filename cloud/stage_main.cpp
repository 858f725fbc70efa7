// duet-stage: a stage worker for a duet-cloud front door on another host (docs/STAGES.md).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "cloud/stage_worker.hpp"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-stage: runs one layer range of a duet-cloud front door's model, on this host"};
  duet::cloud::StageWorkerOptions o;
  std::string front, log_level = "info";
  int64_t step_ms = 10000, idle_ms = 10000, max_memory_mib = 0;
  app.add_option("--model", o.model_path, "model folder: the same checkpoint as the front door's")->required();
  app.add_option("--name", o.name, "this worker's name in the front door's plan (DEVICE@NAME=FIRST-LAST)")->required();
  app.add_option("--front", front, "the front door's cluster address and store port, HOST:PORT")->required();
  app.add_option("--address", o.address,
                 "this machine's address on the cluster network (Gloo binds here; never a wildcard)")->required();
  // 0 or less would lose every neighbour at once; over an hour no failure would ever be noticed
  app.add_option("--step-timeout-ms", step_ms, "a neighbour silent this long in the middle of a step is lost")
      ->check(CLI::Range(int64_t(1), int64_t(3600000)));
  app.add_option("--idle-timeout-ms", idle_ms, "no step nor heartbeat from the front door this long: it is lost, rejoin")
      ->check(CLI::Range(int64_t(1), int64_t(3600000)));
  app.add_option("--max-memory-mib", max_memory_mib,
                 "offer at most this much memory to a front door's automatic split (DEVICE@NAME=auto; default: "
                 "the device's free memory, the host's available memory for cpu)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("[%H:%M:%S.%e] [stage " + o.name + "] [%^%l%$] %v");
  const auto colon = front.rfind(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("--front '" + front + "' is not HOST:PORT");
    o.front_host = front.substr(0, colon);
    const int port = std::stoi(front.substr(colon + 1));
    if (port < 1 || port > 65535) throw std::invalid_argument("--front '" + front + "': port out of range");
    o.front_port = static_cast<uint16_t>(port);
    o.step_timeout = std::chrono::milliseconds(step_ms);
    o.idle_timeout = std::chrono::milliseconds(idle_ms);
    o.max_memory_bytes = max_memory_mib * (int64_t(1) << 20);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    return duet::cloud::run_stage_worker(o, g_stop);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
