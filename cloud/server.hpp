#pragma once
// The daemon's socket loop: one ROUTER socket (CurveZMQ + ZAP allow-list unless insecure),
// requests decoded and validated by protocol/, sessions in a SessionTable, forwards run through
// the Pipeline. Every bad request gets an Error reply with a code and a sentence; one client's
// mistake never stops the others.
#include <atomic>
#include <memory>
#include <string>

#include "cloud/cloud_config.hpp"

namespace duet::cloud {

class Server {
 public:
  explicit Server(const CloudConfig& config);  // loads the blocks, binds the socket
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until `stop` becomes true (checked at least every 100 ms).
  void run(const std::atomic<bool>& stop);
  std::string endpoint() const;  // the bound address (resolves tcp://*:0)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::cloud
