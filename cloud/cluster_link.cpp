#include "cloud/cluster_link.hpp"

#include <torch/version.h>

#if defined(DUET_WITH_GLOO)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // the c10d headers hide the Gloo group without it
#endif
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#if defined(DUET_WITH_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(DUET_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#define DUET_STORE_LISTEN_FD (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace duet::cloud {

void check_cluster_address(const std::string& a, const std::string& setting) {
  if (a.empty())
    throw std::invalid_argument(setting + " is not set: name this machine's address on the cluster network "
                                "(the stage links are not encrypted; keep them off the interface edges reach)");
  if (a == "0.0.0.0" || a == "::" || a == "[::]" || a == "*" || a == "0")
    throw std::invalid_argument(setting + " '" + a + "' is a wildcard: name one address on the cluster network. "
                                "Workers connect to the address each process advertises, and the stage links "
                                "(c10d store, Gloo/NCCL) are neither encrypted nor authenticated");
}

std::string brief(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool store_binds_one_address() { return DUET_STORE_LISTEN_FD; }

bool nccl_available() {
#if defined(DUET_WITH_NCCL)
  return true;
#else
  return false;
#endif
}

// ---- store --------------------------------------------------------------------------------------

struct ClusterStore::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
};

ClusterStore::ClusterStore() : impl_(std::make_unique<Impl>()) {}
ClusterStore::~ClusterStore() = default;
ClusterStore::ClusterStore(ClusterStore&&) noexcept = default;
ClusterStore& ClusterStore::operator=(ClusterStore&&) noexcept = default;

#if DUET_STORE_LISTEN_FD
namespace {
// A listening socket on address:port only, for TCPStore to take over (masterListenFd).
int listen_on(const std::string& address, uint16_t port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (int rc = getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    throw std::runtime_error("cluster address '" + address + "': " + gai_strerror(rc));
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool ok = fd >= 0 && bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, 64) == 0;
  const int err = errno;
  freeaddrinfo(res);
  if (!ok) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot listen on cluster address " + address + ":" + std::to_string(port) + ": " +
                             std::strerror(err));
  }
  return fd;
}
}  // namespace
#endif

ClusterStore ClusterStore::serve(const std::string& address, uint16_t port, bool allow_wildcard,
                                 std::chrono::milliseconds timeout) {
  check_cluster_address(address, "the cluster address");
  c10d::TCPStoreOptions o;
  o.port = port;
  o.isServer = true;
  o.waitWorkers = false;
  o.timeout = timeout;
#if DUET_STORE_LISTEN_FD
  (void)allow_wildcard;
  o.masterListenFd = listen_on(address, port);
#else
  if (!allow_wildcard)
    throw std::invalid_argument(
        "this LibTorch (" TORCH_VERSION ") cannot bind its c10d store to one address: its TCPStore listens on every "
        "interface. Build against LibTorch 2.4 or later, or accept it with --cluster-allow-wildcard-store "
        "([stages] cluster_allow_wildcard_store) and firewall the store port to the cluster network");
#endif
  ClusterStore s;
  s.impl_->store = c10::make_intrusive<c10d::TCPStore>(address, o);
  return s;
}

ClusterStore ClusterStore::connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = port;
  o.isServer = false;
  o.timeout = timeout;
  ClusterStore s;
  s.impl_->store = c10::make_intrusive<c10d::TCPStore>(host, o);
  return s;
}

uint16_t ClusterStore::port() const { return impl_->store->getPort(); }

void ClusterStore::set(const std::string& key, const std::string& value) {
  impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
}

std::string ClusterStore::get(const std::string& key) {
  const auto v = impl_->store->get(key);
  return std::string(v.begin(), v.end());
}

bool ClusterStore::check(const std::string& key) { return impl_->store->check({key}); }

// ---- link ---------------------------------------------------------------------------------------

struct ClusterLink::Impl {
#if TORCH_VERSION_MAJOR >= 2
  c10::intrusive_ptr<c10d::Backend> pg;  // from 2.0 the Gloo and NCCL groups are backends, not process groups
#else
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
#endif
  c10::Device device = c10::Device(c10::kCPU);
  bool nccl = false;
  std::chrono::milliseconds timeout{0};
  std::vector<c10::intrusive_ptr<c10d::Work>> pending;
  std::vector<torch::Tensor> keep;  // what pending sends read

  void wait(const c10::intrusive_ptr<c10d::Work>& w, std::chrono::milliseconds t) {
    try {
      w->wait(t);
    } catch (const std::exception& e) {
      const std::string what = brief(e);
      if (what.find("Timed out") != std::string::npos || what.find("timed out") != std::string::npos)
        throw LinkTimeout("no answer within " + std::to_string(t.count()) + " ms: " + what.substr(0, 200));
      throw std::runtime_error(what);
    }
  }
};

ClusterLink::ClusterLink(ClusterStore& store, const std::string& prefix, int rank, int world, const std::string& address,
                         bool use_nccl, c10::Device comm_device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  check_cluster_address(address, "the cluster address");
  impl_->device = comm_device;
  impl_->timeout = timeout;
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix, store.impl().store);
#if defined(DUET_WITH_NCCL)
  if (use_nccl) {
    // NCCL picks its interface from NCCL_SOCKET_IFNAME: docs/STAGES.md says to set it to the cluster's
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world, o);
    impl_->nccl = true;
    return;
  }
#else
  if (use_nccl) throw std::invalid_argument("this build has no NCCL process group (LibTorch without CUDA)");
#endif
#if defined(DUET_WITH_GLOO)
  auto o = c10d::ProcessGroupGloo::Options::create(timeout);
  o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address));
  impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, o);
#else
  throw std::invalid_argument("this build has no Gloo process group (its LibTorch came without gloo's headers: "
                              "install libgloo-dev and rebuild, or link the stages with NCCL)");
#endif
}

ClusterLink::~ClusterLink() = default;

const char* ClusterLink::backend() const { return impl_->nccl ? "nccl" : "gloo"; }

void ClusterLink::flush() {
  for (auto& w : impl_->pending) impl_->wait(w, impl_->timeout);
  impl_->pending.clear();
  impl_->keep.clear();
}

void ClusterLink::send(int to, const step_wire::Header& header, const std::vector<int64_t>& rows,
                       const torch::Tensor& x) {
  flush();
  step_wire::Header h = header;
  h.x_rows = h.kind == step_wire::Kind::step && x.defined() ? x.size(0) : 0;  // what follows says what it is
  const auto words = step_wire::encode_header(h);
  auto put = [&](torch::Tensor t) {
    std::vector<torch::Tensor> v{t};
    impl_->pending.push_back(impl_->pg->send(v, to, 0));
    impl_->keep.push_back(t);
  };
  auto lopt = torch::TensorOptions().dtype(torch::kLong);
  put(torch::tensor(c10::ArrayRef<int64_t>(words.data(), words.size()), lopt).to(impl_->device));
  if (h.kind != step_wire::Kind::step) return;
  put(torch::tensor(c10::ArrayRef<int64_t>(rows), lopt).to(impl_->device));
  if (h.x_rows > 0) put(x.to(impl_->device).contiguous());
}

ClusterLink::Message ClusterLink::recv(int from, const step_wire::Limits& limits, c10::ScalarType dtype,
                                       std::chrono::milliseconds timeout) {
  auto lopt = torch::TensorOptions().dtype(torch::kLong).device(impl_->device);
  auto get = [&](torch::Tensor t, std::chrono::milliseconds within) {
    std::vector<torch::Tensor> v{t};
    impl_->wait(impl_->pg->recv(v, from, 0), within);
    return t;
  };
  Message m;
  auto hw = get(torch::empty({int64_t(step_wire::kHeaderWords)}, lopt), timeout).to(torch::kCPU);
  m.header = step_wire::decode_header(hw.data_ptr<int64_t>(), step_wire::kHeaderWords, limits);
  if (m.header.kind != step_wire::Kind::step) return m;
  auto rw = get(torch::empty({m.header.ids}, lopt), impl_->timeout).to(torch::kCPU);
  m.rows.assign(rw.data_ptr<int64_t>(), rw.data_ptr<int64_t>() + m.header.ids);
  m.x = torch::empty({m.header.x_rows, m.header.hidden}, lopt.dtype(dtype));
  if (m.header.x_rows > 0) m.x = get(m.x, impl_->timeout);
  return m;
}

}  // namespace duet::cloud
