// Integration harness: real duet-cloud / duet-edge processes on loopback, CURVE key sets, and a
// raw DEALER client that speaks the wire protocol frame by frame. No LibTorch here.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "protocol/curve_keys.hpp"
#include "protocol/messages.hpp"

namespace duet::itest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---- paths ----------------------------------------------------------------------------------

std::string cloud_binary();  // build/cloud/duet-cloud
std::string edge_binary();   // build/edge/client/duet-edge
std::string fixture_model(const std::string& name);  // tests/fixtures/models/NAME
std::string abc_model();                             // models/abc-folk
std::string source_path(const std::string& rel);     // DUET_SOURCE_DIR/rel

std::string read_file(const fs::path& p);

// A fresh directory under the temp dir, removed with its contents on scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "duet-itest");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// ---- processes ------------------------------------------------------------------------------

// A child process (fork + exec) with stdout and stderr captured to files (no pipe to fill up).
// The destructor sends SIGTERM, waits, and falls back to SIGKILL; the child also gets SIGTERM
// when the test process dies, so no daemon outlives a crashed or timed-out run.
class ChildProcess {
 public:
  ChildProcess(const std::string& exe, const std::vector<std::string>& args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();  // false once it exited (reaps it)
  void signal(int sig);
  // Exit status once it ends: the exit code, or 128 + signal number; nullopt on timeout.
  std::optional<int> wait_for(std::chrono::milliseconds limit);
  std::string out() const;  // stdout so far
  std::string err() const;  // stderr so far

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct ProcessResult {
  int status = -1;  // exit code, 128 + signal, or -1 when it ran past the limit (then killed)
  std::string out, err;
};
ProcessResult run_process(const std::string& exe, const std::vector<std::string>& args,
                          std::chrono::milliseconds limit = 60s);

// duet-cloud with the given arguments; the constructor waits for the "listening on ENDPOINT"
// line on stdout and throws (with the daemon's log) when it does not come or the process dies.
class DaemonProcess {
 public:
  explicit DaemonProcess(const std::vector<std::string>& args, std::chrono::milliseconds ready = 30s);
  const std::string& endpoint() const { return endpoint_; }
  // SIGTERM (or sig) and wait: the exit status (see ChildProcess::wait_for), -1 on timeout.
  int stop(int sig = 15, std::chrono::milliseconds limit = 10s);
  std::string log() const;  // stdout + stderr
  ChildProcess& process() { return proc_; }

 private:
  ChildProcess proc_;
  std::string endpoint_;
};

// Stage rows of the "stage plan" table the daemon prints at start.
int stage_count(const std::string& log);

// ---- keys -----------------------------------------------------------------------------------

// One key set for the whole run: a server pair, an authorized client ("edge"), a client whose
// key is in no allow-list ("intruder"), a second server pair (to pin the wrong key), and an
// empty folder to use as an (invalid) allow-list.
struct Keys {
  TempDir dir{"duet-itest-keys"};
  fs::path server_secret, server_public;
  fs::path clients;  // allow-list folder: edge.key and studio.key
  protocol::CurveKeyPair studio;  // a second authorized client
  fs::path edge_secret, edge_public;
  fs::path intruder_secret;
  fs::path other_server_public;
  fs::path empty_clients;
  protocol::CurveKeyPair server, edge, intruder;
  Keys();
};
const Keys& keys();

// Daemon arguments for a model over CURVE with the shared keys; extra arguments appended.
std::vector<std::string> secure_args(const std::string& model, const std::vector<std::string>& extra = {});

// ---- raw protocol client --------------------------------------------------------------------

// A DEALER socket that sends hand-made frames and returns whatever comes back.
class RawClient {
 public:
  // CURVE with the given client pair, pinning server_public (empty client pair: --insecure).
  // routing_id: set ZMQ_ROUTING_ID (a client may pick any; the daemon must not trust it).
  RawClient(const std::string& endpoint, const protocol::CurveKeyPair& client, const std::string& server_public,
            const std::string& routing_id = {});
  ~RawClient();

  void send(std::vector<zmq::message_t> frames);
  // The next reply, decoded (tensor views point into last_frames()); nullopt when none in time.
  // 15 s by default: a hang still fails, and a 200-position prefill on two cores shared with a
  // build and another test run once took over 5 s (a fresh-root run of test_abuse's KV case).
  std::optional<protocol::DecodedMessage> receive(std::chrono::milliseconds limit = 15s);
  // send + receive; REQUIREs a reply.
  protocol::DecodedMessage request(std::vector<zmq::message_t> frames, std::chrono::milliseconds limit = 15s);
  protocol::DecodedMessage request(const protocol::MessageBody& body, std::vector<zmq::message_t> tensors = {});

  // The usual steps, each REQUIREd to succeed.
  protocol::HelloReply hello(const std::string& fingerprint, protocol::WireDtype dtype = protocol::WireDtype::f32);
  uint64_t open_session(uint32_t max_positions = 0);
  protocol::Result forward(uint64_t session, uint32_t start, uint32_t n, uint32_t hidden, float value = 0.01f);
  // Frames of a forward whose tensor frame matches its descriptor (fp32 rows filled with value).
  std::vector<zmq::message_t> forward_frames(uint64_t session, uint32_t start, uint32_t n, uint32_t hidden,
                                             protocol::WireDtype dtype = protocol::WireDtype::f32,
                                             float value = 0.01f);
  uint64_t next_id() { return next_++; }
  zmq::socket_t& socket() { return sock_; }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sock_;
  std::vector<zmq::message_t> reply_;
  uint64_t next_ = 1;
};

// The error a reply carries; REQUIREs that it is an Error with `code`.
protocol::Error expect_error(const std::optional<protocol::DecodedMessage>& reply, protocol::ErrorCode code);

// A /proc/PID/status field in KiB ("VmRSS": resident now, "VmHWM": the peak); -1 when absent.
int64_t proc_status_kib(pid_t pid, const std::string& field);
// CPU seconds (user + system) the process has used so far, from /proc/PID/stat.
double proc_cpu_seconds(pid_t pid);

// The port of "metrics (Prometheus text) on http://127.0.0.1:PORT/metrics" in the daemon's log.
int metrics_port(const DaemonProcess& d);
// A sample's value in Prometheus text, e.g. metric(text, "duet_kv_blocks", "state=\"used\""); REQUIREs it.
double metric(const std::string& text, const std::string& name, const std::string& labels = {});

// A TCP port on 127.0.0.1 that nothing listens on (bound, read, closed).
int closed_port();

// GET http://127.0.0.1:port/path (HTTP/1.0, the body of a 200 reply); nullopt on any failure.
std::optional<std::string> http_get(int port, const std::string& path);

}  // namespace duet::itest
