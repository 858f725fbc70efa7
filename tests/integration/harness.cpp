#include "harness.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <zmq_addon.hpp>

#include "bench/metrics_scrape.hpp"
#include "protocol/curve.hpp"
#include "protocol/recv.hpp"
#include "tests/common/remove_tree.hpp"

namespace duet::itest {

namespace p = protocol;

std::string cloud_binary() { return std::string(DUET_BINARY_DIR) + "/cloud/duet-cloud"; }
std::string edge_binary() { return std::string(DUET_BINARY_DIR) + "/edge/client/duet-edge"; }
std::string fixture_model(const std::string& name) { return std::string(DUET_FIXTURES_DIR) + "/models/" + name; }
std::string abc_model() { return std::string(DUET_SOURCE_DIR) + "/models/abc-folk"; }
std::string source_path(const std::string& rel) { return std::string(DUET_SOURCE_DIR) + "/" + rel; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- TempDir --------------------------------------------------------------------------------

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  duet::test::remove_tree(path_.string());
}

// ---- ChildProcess ---------------------------------------------------------------------------

ChildProcess::ChildProcess(const std::string& exe, const std::vector<std::string>& args) : dir_("duet-itest-proc") {
  // everything the child needs is prepared before fork: between fork and exec it only makes
  // async-signal-safe calls (the test process has LibTorch's threads)
  std::vector<std::string> argv_s;
  argv_s.push_back(exe);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out = (dir_ / "stdout").string(), err = (dir_ / "stderr").string();
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork for " + exe + ": " + std::strerror(errno));
  if (pid_ == 0) {
    // a test run that dies (crash, ctest timeout) takes its daemons with it. The signal follows
    // the forking thread's exit, so start processes from the test's main thread.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    // default signal handling, whatever the test process set up
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGHUP}) ::signal(sig, SIG_DFL);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (!running()) return;
  signal(SIGTERM);
  if (!wait_for(10s)) {
    signal(SIGKILL);
    wait_for(10s);
  }
}

bool ChildProcess::running() {
  if (status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  else status_ = -1;  // not our child any more (should not happen)
  return false;
}

void ChildProcess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_for(std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (running()) {
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

std::string ChildProcess::out() const { return read_file(dir_ / "stdout"); }
std::string ChildProcess::err() const { return read_file(dir_ / "stderr"); }

ProcessResult run_process(const std::string& exe, const std::vector<std::string>& args,
                          std::chrono::milliseconds limit) {
  ChildProcess proc(exe, args);
  ProcessResult r;
  auto st = proc.wait_for(limit);
  if (!st) {
    proc.signal(SIGKILL);
    proc.wait_for(10s);
  }
  r.status = st ? *st : -1;
  r.out = proc.out();
  r.err = proc.err();
  return r;
}

// ---- DaemonProcess --------------------------------------------------------------------------

namespace {
std::optional<std::string> listening_line(const std::string& out) {
  // the daemon's own line, not the log record "[..] [info] listening on ..."
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("listening on ", 0) == 0 && !in.eof()) return line.substr(13);
  return std::nullopt;
}
}  // namespace

DaemonProcess::DaemonProcess(const std::vector<std::string>& args, std::chrono::milliseconds ready)
    : proc_(cloud_binary(), args) {
  const auto end = std::chrono::steady_clock::now() + ready;
  while (true) {
    if (auto ep = listening_line(proc_.out())) {
      endpoint_ = *ep;
      return;
    }
    if (!proc_.running())
      throw std::runtime_error("duet-cloud exited with status " + std::to_string(*proc_.wait_for(0ms)) +
                               " before listening; its log:\n" + log());
    if (std::chrono::steady_clock::now() >= end)
      throw std::runtime_error("duet-cloud did not print 'listening on' within the time limit; its log:\n" + log());
    std::this_thread::sleep_for(10ms);
  }
}

int DaemonProcess::stop(int sig, std::chrono::milliseconds limit) {
  proc_.signal(sig);
  auto st = proc_.wait_for(limit);
  return st ? *st : -1;
}

std::string DaemonProcess::log() const { return "--- stdout\n" + proc_.out() + "--- stderr\n" + proc_.err(); }

int stage_count(const std::string& log) {
  std::istringstream in(log);
  int n = 0;
  bool table = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("stage ", 0) == 0 && line.find("layers") != std::string::npos) {
      table = true;
      continue;
    }
    if (!table) continue;
    if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) ++n;
    else break;
  }
  return n;
}

// ---- keys -----------------------------------------------------------------------------------

Keys::Keys() {
  server = p::generate_keypair();
  edge = p::generate_keypair();
  intruder = p::generate_keypair();
  auto files = p::write_keypair(dir.path(), "server", server);
  server_secret = files.secret_file;
  server_public = files.public_file;
  files = p::write_keypair(dir / "edge", "edge", edge);
  edge_secret = files.secret_file;
  edge_public = files.public_file;
  clients = dir / "clients";
  fs::create_directories(clients);
  fs::copy_file(edge_public, clients / "edge.key");
  studio = p::generate_keypair();
  fs::copy_file(p::write_keypair(dir / "studio", "studio", studio).public_file, clients / "studio.key");
  intruder_secret = p::write_keypair(dir / "intruder", "intruder", intruder).secret_file;
  other_server_public = p::write_keypair(dir / "other", "other-server", p::generate_keypair()).public_file;
  empty_clients = dir / "empty-clients";
  fs::create_directories(empty_clients);
}

const Keys& keys() {
  static Keys k;
  return k;
}

std::vector<std::string> secure_args(const std::string& model, const std::vector<std::string>& extra) {
  const Keys& k = keys();
  std::vector<std::string> a = {"--model", model, "--listen", "tcp://127.0.0.1:*", "--secret-key",
                                k.server_secret.string(), "--authorized-keys", k.clients.string()};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// ---- RawClient ------------------------------------------------------------------------------

RawClient::RawClient(const std::string& endpoint, const p::CurveKeyPair& client, const std::string& server_public,
                     const std::string& routing_id)
    : sock_(ctx_, zmq::socket_type::dealer) {
  sock_.set(zmq::sockopt::linger, 0);
  if (!routing_id.empty()) sock_.set(zmq::sockopt::routing_id, routing_id);
  if (!client.secret_z85.empty()) p::configure_curve_client(sock_, client, server_public);
  sock_.connect(endpoint);
}

RawClient::~RawClient() { sock_.close(); }

void RawClient::send(std::vector<zmq::message_t> frames) {
  REQUIRE(zmq::send_multipart(sock_, frames, zmq::send_flags::dontwait));
}

std::optional<p::DecodedMessage> RawClient::receive(std::chrono::milliseconds limit) {
  zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, limit) <= 0) return std::nullopt;
  if (!p::recv_bounded(sock_, reply_, p::kMaxFramesPerMessage + 1, zmq::recv_flags::dontwait)) return std::nullopt;
  return p::decode(reply_);
}

p::DecodedMessage RawClient::request(std::vector<zmq::message_t> frames, std::chrono::milliseconds limit) {
  send(std::move(frames));
  auto r = receive(limit);
  REQUIRE_MESSAGE(r.has_value(), "no reply from the daemon");
  return *r;
}

p::DecodedMessage RawClient::request(const p::MessageBody& body, std::vector<zmq::message_t> tensors) {
  std::vector<zmq::message_t> frames;
  p::append_message(frames, next_id(), body, std::move(tensors));
  return request(std::move(frames));
}

namespace {
std::string describe(const p::DecodedMessage& m) {
  if (m.kind == p::MessageKind::error) {
    const auto& e = m.as<p::Error>();
    return "error " + std::string(p::to_string(e.code)) + ": " + e.message;
  }
  return std::string(p::to_string(m.kind));
}
}  // namespace

p::HelloReply RawClient::hello(const std::string& fingerprint, p::WireDtype dtype) {
  p::Hello h;
  h.model_fingerprint = fingerprint;
  h.wire_dtype = dtype;
  h.client_name = "itest-raw";
  auto m = request(h);
  REQUIRE_MESSAGE(m.kind == p::MessageKind::hello_reply, describe(m));
  return m.as<p::HelloReply>();
}

uint64_t RawClient::open_session(uint32_t max_positions) {
  auto m = request(p::OpenSession{max_positions});
  REQUIRE_MESSAGE(m.kind == p::MessageKind::session_opened, describe(m));
  return m.as<p::SessionOpened>().session_id;
}

std::vector<zmq::message_t> RawClient::forward_frames(uint64_t session, uint32_t start, uint32_t n, uint32_t hidden,
                                                      p::WireDtype dtype, float value) {
  p::Forward f;
  f.session_id = session;
  f.start_pos = start;
  f.n_positions = n;
  f.output = p::OutputMode::last;
  f.hidden.dtype = dtype;
  f.hidden.shape = {n, hidden};
  std::vector<float> rows(size_t(n) * hidden, value);
  const size_t bytes = size_t(n) * hidden * p::element_size(dtype);
  std::vector<std::byte> buf(bytes);
  std::memcpy(buf.data(), rows.data(), std::min(bytes, rows.size() * sizeof(float)));
  return p::encode(next_id(), f, p::tensor_frame_copy(buf.data(), buf.size()));
}

p::Result RawClient::forward(uint64_t session, uint32_t start, uint32_t n, uint32_t hidden, float value) {
  auto m = request(forward_frames(session, start, n, hidden, p::WireDtype::f32, value));
  REQUIRE_MESSAGE(m.kind == p::MessageKind::result, describe(m));
  return m.as<p::Result>();
}

p::Error expect_error(const std::optional<p::DecodedMessage>& reply, p::ErrorCode code) {
  REQUIRE_MESSAGE(reply.has_value(), "no reply: expected an error " << p::to_string(code));
  REQUIRE_MESSAGE(reply->kind == p::MessageKind::error, "expected an error " << p::to_string(code) << ", got "
                                                                             << describe(*reply));
  const auto& e = reply->as<p::Error>();
  INFO("error message: " << e.message);
  CHECK_MESSAGE(e.code == code, "got " << p::to_string(e.code) << " (" << e.message << "), expected "
                                       << p::to_string(code));
  CHECK_FALSE(e.message.empty());
  return e;
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::optional<std::string> http_get(int port, const std::string& path) {
  return bench::http_get("127.0.0.1", port, path);
}

}  // namespace duet::itest

namespace duet::itest {

int64_t proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

double proc_cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // after the command's ")" (it may hold spaces): state is field 3, utime 14, stime 15
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::vector<std::string> fields{std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
  REQUIRE_MESSAGE(fields.size() > 13, "cannot read /proc/" << pid << "/stat");
  return double(std::stoll(fields[11]) + std::stoll(fields[12])) / double(::sysconf(_SC_CLK_TCK));
}

int metrics_port(const DaemonProcess& d) {
  std::smatch m;
  const std::string log = d.log();
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex("metrics \\(Prometheus text\\) on http://127\\.0\\.0\\.1:([0-9]+)/metrics")),
                  "no metrics address in the daemon's log:\n" << log);
  return std::stoi(m[1]);
}

double metric(const std::string& text, const std::string& name, const std::string& labels) {
  const auto v = bench::metric_sample(text, name, labels);
  REQUIRE_MESSAGE(v.has_value(), "no sample " << name << (labels.empty() ? "" : "{" + labels + "}") << " in\n" << text);
  return *v;
}

}  // namespace duet::itest
