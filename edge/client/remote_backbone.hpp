#pragma once
// The backbone as a session on a duet-cloud daemon. Keeps the hidden states it has sent, so that
// when the session is lost (expired, daemon restarted) it opens a new one, replays the prefix and
// goes on: the generation loses no token.
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "common/backbone.hpp"
#include "edge/client/cloud_connection.hpp"

namespace duet::edge {

class RemoteBackbone final : public Backbone {
 public:
  RemoteBackbone(CloudConnection& conn, uint32_t max_positions = 0);
  ~RemoteBackbone() override;  // closes the session, best effort

  torch::Tensor forward(const torch::Tensor& hidden, int64_t start, bool last_only) override;
  void reset() override;
  double last_compute_ms() const override { return last_cloud_ms_; }
  RoundTiming last_timing() const override { return timing_; }

  // how long the destructor waits for the daemon to confirm a close
  static constexpr std::chrono::milliseconds kCloseTimeout{500};

  uint64_t session_id() const { return session_; }
  int resumes() const { return resumes_; }  // sessions reopened after a loss

 private:
  void open();
  void open_when_ready();  // open(), waiting out stage_unavailable (a stage worker away) for up to a minute
  torch::Tensor send(const torch::Tensor& hidden, int64_t start, bool last_only);
  // hidden already on the host; the reply comes back on `device` in `dtype`
  torch::Tensor send_host(const torch::Tensor& host, int64_t start, bool last_only, c10::Device device,
                          c10::ScalarType dtype);
  void replay(int64_t upto);
  void note_timing(double request_ms, const protocol::Result& r);  // adds one forward to timing_

  CloudConnection& conn_;
  uint32_t max_positions_;
  uint64_t session_ = 0;
  std::vector<torch::Tensor> sent_;  // hidden rows by position, as sent (CPU, wire dtype)
  double last_cloud_ms_ = -1;
  RoundTiming timing_;  // of the last forward() call, summed over its messages
  int resumes_ = 0;
};

}  // namespace duet::edge
