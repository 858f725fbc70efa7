#pragma once
// One process's end of the stage cluster, through torch's c10d (never a transport of our own):
// the front door's TCPStore (where workers meet) and, per generation, a process group over which
// steps move point to point (Gloo between CPU stages and across hosts without GPUs; NCCL where
// this build has it and both ends are CUDA). c10d's headers stay in cluster_link.cpp.
//
// Security: neither the store nor Gloo/NCCL traffic is encrypted or authenticated. Everything binds
// to one named cluster address; a wildcard is refused (docs/STAGES.md, "Trust boundary").
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cloud/step_wire.hpp"

namespace duet::cloud {

// Throws std::invalid_argument when `address` is empty or a wildcard (0.0.0.0, ::, *): peers
// connect to the address this process advertises, and the cluster's links must stay off the
// interfaces edges reach.
void check_cluster_address(const std::string& address, const std::string& setting);
// Whether this LibTorch can bind its TCPStore's listener to one address (2.4+: a socket we bind
// and hand over); 1.13's listens on every interface whatever it is told.
bool store_binds_one_address();
// Whether this build has c10d's NCCL process group (LibTorch with CUDA and USE_C10D_NCCL).
bool nccl_available();

// The key-value store where the cluster meets: the front door serves it, workers connect.
class ClusterStore {
 public:
  // Serve on address:port (port 0: any free one). allow_wildcard: accept a LibTorch whose store
  // listens on every interface (store_binds_one_address() false); otherwise that throws.
  static ClusterStore serve(const std::string& address, uint16_t port, bool allow_wildcard,
                            std::chrono::milliseconds timeout);
  static ClusterStore connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout);
  ClusterStore();
  ~ClusterStore();
  ClusterStore(ClusterStore&&) noexcept;
  ClusterStore& operator=(ClusterStore&&) noexcept;

  uint16_t port() const;
  void set(const std::string& key, const std::string& value);
  std::string get(const std::string& key);  // waits up to the store's timeout
  bool check(const std::string& key);       // present now?

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// One generation's process group: rank 0 is the front door, workers 1..W. The constructor blocks
// until every rank has joined (or `timeout`, then throws). Sends are asynchronous: a send waits
// only for the previous sends of this link (so a worker can take step k+1 while the next stage
// still receives step k).
class ClusterLink {
 public:
  ClusterLink(ClusterStore& store, const std::string& prefix, int rank, int world, const std::string& address,
              bool use_nccl, c10::Device comm_device, std::chrono::milliseconds timeout);
  ~ClusterLink();
  ClusterLink(const ClusterLink&) = delete;
  ClusterLink& operator=(const ClusterLink&) = delete;

  // header, then (kind step) rows and x [tokens, hidden]; throws on a broken link.
  void send(int to, const step_wire::Header& h, const std::vector<int64_t>& rows, const torch::Tensor& x);
  struct Message {
    step_wire::Header header;
    std::vector<int64_t> rows;
    torch::Tensor x;  // [tokens, hidden] on comm_device, dtype as asked
  };
  // Waits up to `timeout` for the header (then throws LinkTimeout), then the rest.
  Message recv(int from, const step_wire::Limits& limits, c10::ScalarType dtype, std::chrono::milliseconds timeout);
  void flush();  // waits for every pending send

  const char* backend() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// e.what() without c10's backtrace (c10::Error carries one in what()).
std::string brief(const std::exception& e);

class LinkTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace duet::cloud
