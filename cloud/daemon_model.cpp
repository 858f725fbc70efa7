#include "cloud/daemon_model.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "cloud/pipeline.hpp"
#include "common/checkpoint.hpp"
#include "common/dtype.hpp"
#include "common/wire/tensor_frames.hpp"

namespace duet::cloud {

struct DaemonModel::Impl {
  CloudConfig cfg;
  Checkpoint ckpt;
  std::string fingerprint;
  std::unique_ptr<Pipeline> pipeline;
  uint32_t max_positions = 0;

  explicit Impl(const CloudConfig& c) : cfg(c), ckpt(c.model_path) {
    const auto& mc = ckpt.config();
    fingerprint = model_fingerprint(ckpt);
    max_positions = static_cast<uint32_t>(std::min<int64_t>(cfg.max_positions_per_session, mc.max_positions));
    if (cfg.first_block < 0 || cfg.first_block >= mc.num_layers)
      throw std::invalid_argument("first_block " + std::to_string(cfg.first_block) + " is out of range: the model has " +
                                  std::to_string(mc.num_layers) + " blocks and the daemon must run at least one");
    auto plan = make_stage_plan(cfg.plan, cfg.devices, mc.num_layers, cfg.first_block);
    KvSizing kv;
    kv.budget_bytes = static_cast<int64_t>(cfg.kv_memory_mb) << 20;
    // no more blocks than every session at its longest could use (+ the scratch block)
    kv.max_blocks = int64_t(cfg.max_sessions) * KvBlockAllocator::blocks_for(max_positions) + 1;
    const auto t0 = std::chrono::steady_clock::now();
    ClusterOptions cluster;
    cluster.address = cfg.cluster_address;
    cluster.store_port = static_cast<uint16_t>(cfg.cluster_port);
    cluster.allow_wildcard_store = cfg.cluster_allow_wildcard_store;
    cluster.step_timeout = std::chrono::milliseconds(cfg.stage_timeout_ms);
    cluster.heartbeat = std::chrono::milliseconds(cfg.stage_heartbeat_ms);
    cluster.front_device = cfg.devices.empty() ? "cpu" : cfg.devices.front();
    pipeline = std::make_unique<Pipeline>(ckpt, plan, parse_dtype(cfg.dtype), kv, cluster);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("model {} ({}, {} layers, hidden {}), {}, blocks loaded in {:.2f} s", cfg.model_path, mc.model_type,
                 mc.num_layers, mc.hidden_size, cfg.dtype, load_s);
    spdlog::info("fingerprint {}", fingerprint);
    std::printf("stage plan (%s):\n%s", cfg.plan.c_str(), pipeline->describe().c_str());
    std::fflush(stdout);
  }
};

DaemonModel::DaemonModel(const CloudConfig& cfg) : impl_(std::make_unique<Impl>(cfg)) {}
DaemonModel::~DaemonModel() = default;
Pipeline& DaemonModel::pipeline() { return *impl_->pipeline; }
const std::string& DaemonModel::fingerprint() const { return impl_->fingerprint; }
uint32_t DaemonModel::first_block() const { return static_cast<uint32_t>(impl_->cfg.first_block); }
uint32_t DaemonModel::hidden_size() const { return static_cast<uint32_t>(impl_->ckpt.config().hidden_size); }

protocol::ServerLimits DaemonModel::server_limits() const {
  const auto& c = impl_->cfg;
  protocol::ServerLimits l;
  l.max_sessions = c.max_sessions;
  l.max_positions_per_session = impl_->max_positions;
  l.max_positions_per_forward = std::min(c.max_positions_per_forward, impl_->max_positions);
  l.max_message_bytes = c.max_message_mb << 20;
  l.idle_timeout_ms = c.idle_timeout_s * 1000;
  return l;
}

EngineOptions DaemonModel::engine_options(size_t client_keys) const {
  const auto& c = impl_->cfg;
  EngineOptions o;
  o.sessions.max_sessions = c.max_sessions;
  o.sessions.max_positions = impl_->max_positions;
  o.sessions.idle_timeout = std::chrono::milliseconds(int64_t(c.idle_timeout_s) * 1000);
  const auto dq = c.default_quota(client_keys);
  o.sessions.default_quota = {dq.max_sessions, dq.kv_share};
  for (const auto& [name, q] : c.key_quotas_resolved(client_keys)) o.sessions.quotas[name] = {q.max_sessions, q.kv_share};
  o.scheduler.step_latency_factor = c.step_latency_factor;
  o.scheduler.min_prefill_tokens = c.min_prefill_tokens;
  o.scheduler.max_step_seconds = c.max_step_ms / 1000.0;
  // stages on CUDA replay a graph for decode-only steps: a step with a prompt pays a fixed cost
  for (const auto& st : impl_->pipeline->stages())
    if (st.spec.device.rfind("cuda", 0) == 0) o.scheduler.amortize_fixed_prefill = true;
  o.intake.max_queued_bytes = c.max_queued_mb << 20;
  o.intake.max_queued_bytes_per_key = c.max_queued_mb_per_key << 20;
  o.scheduler.max_batch_tokens = c.max_batch_tokens;
  o.scheduler.max_batch_rows = c.max_batch_rows;
  o.scheduler.prefill_chunk = c.prefill_chunk;
  o.batch_wait = std::chrono::microseconds(c.batch_wait_us);
  o.batch_wait_step_fraction = c.batch_wait_step_fraction;
  o.steps_in_flight = c.steps_in_flight;
  o.spin = std::chrono::microseconds(c.spin_us);
  o.contract.hidden_size = hidden_size();
  o.contract.max_positions_per_forward = server_limits().max_positions_per_forward;
  return o;
}

}  // namespace duet::cloud
