#pragma once
// What the daemon serves: the checkpoint's blocks over the stage plan (Pipeline), its
// fingerprint, and the limits and engine options the config gives them. Keeps LibTorch out of
// the socket thread's files.
#include <cstdint>
#include <memory>
#include <string>

#include "cloud/cloud_config.hpp"
#include "cloud/engine.hpp"
#include "protocol/messages.hpp"

namespace duet::cloud {

class Pipeline;

class DaemonModel {
 public:
  explicit DaemonModel(const CloudConfig& cfg);  // loads the blocks, prints the stage plan
  ~DaemonModel();

  Pipeline& pipeline();
  const std::string& fingerprint() const;
  uint32_t hidden_size() const;
  uint32_t first_block() const;  // the daemon runs blocks [first_block, num_layers); edges run the rest
  protocol::ServerLimits server_limits() const;
  // `client_keys`: the allow-list's size (0 without CURVE), for the fair default quotas.
  EngineOptions engine_options(size_t client_keys) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::cloud
