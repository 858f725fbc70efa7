#include "cloud/stage_worker.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "cloud/cluster_link.hpp"
#include "cloud/stage_plan.hpp"
#include "cloud/worker_plan.hpp"
#include "common/checkpoint.hpp"
#include "common/dtype.hpp"
#include "common/pieces.hpp"
#include "common/step_runner.hpp"
#include "common/wire/tensor_frames.hpp"

namespace duet::cloud {

namespace {

using namespace std::chrono_literals;
namespace sw = step_wire;

class Refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This worker's layers, loaded for one plan entry (kept across generations while they match).
struct LoadedStage {
  std::string device;
  int64_t first = -1, last = -1, num_blocks = 0;
  std::string dtype;
  std::vector<std::unique_ptr<Block>> blocks;
  std::unique_ptr<StepRunner> runner;
  int64_t weight_bytes = 0, kv_bytes_per_position = 0;

  bool matches(const WorkerPlan& p, const WorkerPlan::Entry& e) const {
    return runner && device == e.device && first == e.first && last == e.last && dtype == p.dtype &&
           num_blocks == p.num_blocks;
  }
  void load(const Checkpoint& ckpt, const WorkerPlan& p, const WorkerPlan::Entry& e) {
    runner.reset();
    blocks.clear();
    device = e.device;
    first = e.first;
    last = e.last;
    dtype = p.dtype;
    num_blocks = p.num_blocks;
    LoadOptions o{parse_dtype(p.dtype), parse_device(e.device)};
    weight_bytes = kv_bytes_per_position = 0;
    std::vector<const Block*> ptrs;
    for (int64_t i = e.first; i < e.last; ++i) {
      blocks.push_back(load_block(ckpt, i, o));
      weight_bytes += blocks.back()->weight_bytes();
      kv_bytes_per_position += blocks.back()->kv_bytes_per_position();
      ptrs.push_back(blocks.back().get());
    }
    const int64_t initial = o.device.is_cuda() ? p.num_blocks : 64;
    runner = std::make_unique<StepRunner>(std::move(ptrs), p.num_blocks, initial, o.dtype, o.device, StepRunnerOptions{},
                                          p.block_size);
  }
};

// The host's MemAvailable (/proc/meminfo), bytes; -1 when unreadable.
int64_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return -1;
}

// Waits until `key` is in the store (true) or a generation other than `gen` began or stop (false).
bool await_key(ClusterStore& store, const std::string& key, int64_t gen, const std::atomic<bool>& stop) {
  while (!stop) {
    if (store.check(key)) return true;
    if (std::stoll(store.get("gen")) != gen) return false;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Waits for a generation newer than `after` in the store; returns it (0 when stopped).
int64_t next_generation(ClusterStore& store, int64_t after, const std::atomic<bool>& stop) {
  while (!stop) {
    if (store.check("gen")) {
      const int64_t g = std::stoll(store.get("gen"));
      if (g > after) return g;
    }
    std::this_thread::sleep_for(50ms);
  }
  return 0;
}

// Runs steps until the link breaks (throws) or stop is set.
void serve(ClusterLink& link, const WorkerPlan& plan, const WorkerPlan::Entry& me, LoadedStage& st,
           const StageWorkerOptions& opts, const std::atomic<bool>& stop) {
  const int64_t fp = plan.fingerprint();
  const auto dtype = parse_dtype(plan.dtype);
  sw::Limits limits;
  limits.hidden = plan.hidden;
  limits.max_ids = plan.num_blocks * 4 + sw::kMinRowWords * limits.max_rows;
  torch::NoGradGuard no_grad;
  while (!stop) {
    auto m = link.recv(me.prev, limits, dtype, opts.idle_timeout);
    if (m.header.kind != sw::Kind::step) {  // heartbeat or an upstream error: pass it on
      link.send(me.next, m.header, {}, {});
      continue;
    }
    sw::Header out = m.header;
    torch::Tensor y;
    try {
      if (m.header.plan != fp) {
        spdlog::error("step {} carries plan fingerprint {}, this worker's is {}: refused", m.header.step, m.header.plan, fp);
        out.code = sw::Code::plan_mismatch;
      } else {
        auto step = sw::decode_rows(m.rows.data(), m.rows.size(), m.header, plan.num_blocks, plan.block_size);
        if (m.header.x_rows != m.header.tokens)
          throw sw::WireError("step x: " + std::to_string(m.header.x_rows) + " rows for " +
                              std::to_string(m.header.tokens) + " positions (between stages x holds every one)");
        // the chain's last worker sends back only what the rows ask for (the front door asks for
        // every position when stages of its own follow)
        y = st.runner->run(step.batch, m.x.to(st.runner->device()),
                           me.next == 0 ? StepOutput::asked : StepOutput::every_position);
      }
    } catch (const sw::WireError& e) {
      spdlog::error("step {} refused: {}", m.header.step, e.what());
      out.code = sw::Code::bad_step;
    } catch (const std::exception& e) {
      spdlog::error("step {} failed: {}", m.header.step, brief(e));
      out.code = sw::Code::failed;
    }
    if (out.code != sw::Code::none) {
      out.kind = sw::Kind::error;
      out.rows = out.tokens = out.ids = 0;
      link.send(me.next, out, {}, {});
    } else {
      link.send(me.next, out, m.rows, y);
    }
  }
}

}  // namespace

int64_t stage_offer_bytes(const std::string& device, int64_t max_memory_bytes) {
  int64_t free = device_free_bytes(device);
  if (free < 0 && parse_device(device).is_cpu()) free = host_available_bytes();
  if (max_memory_bytes > 0) free = free > 0 ? std::min(free, max_memory_bytes) : max_memory_bytes;
  return free;
}

int run_stage_worker(const StageWorkerOptions& opts, const std::atomic<bool>& stop) {
  check_cluster_address(opts.address, "--address");
  Checkpoint ckpt(opts.model_path);
  const std::string fingerprint = model_fingerprint(ckpt);
  spdlog::info("stage worker '{}': model {} (fingerprint {}), cluster address {}, front door {}:{}", opts.name,
               opts.model_path, fingerprint, opts.address, opts.front_host, opts.front_port);
  LoadedStage st;
  int64_t served = 0;
  std::unique_ptr<ClusterStore> store;
  // says why in the store (the front door logs it) and stops this worker
  auto refuse = [&](const std::string& pre, const std::string& why) {
    store->set(pre + "refused/" + opts.name, why);
    throw Refused(why);
  };
  while (!stop) {
    try {
      if (!store) store = std::make_unique<ClusterStore>(ClusterStore::connect(opts.front_host, opts.front_port, 5s));
      const int64_t gen = next_generation(*store, served, stop);
      if (!gen) break;
      served = gen;
      const std::string pre = "g" + std::to_string(gen) + "/";
      if (!store->check(pre + "plan")) {
        // an automatic split: the front door asks for each worker's memory before it plans
        const auto ask = WorkerPlan::parse_ask(store->get(pre + "ask"));
        const auto mine = std::find_if(ask.begin(), ask.end(), [&](const auto& w) { return w.first == opts.name; });
        if (mine == ask.end()) refuse(pre, "the front door's plan names no worker '" + opts.name + "'");
        const int64_t offer = stage_offer_bytes(mine->second, opts.max_memory_bytes);
        store->set(pre + "offer/" + opts.name, offer_text(offer));
        spdlog::info("generation {}: offered {} for {}", gen,
                     offer > 0 ? std::to_string(offer >> 20) + " MiB" : std::string("an unknown amount"), mine->second);
        if (!await_key(*store, pre + "plan", gen, stop)) continue;
      }
      const auto plan = WorkerPlan::parse(store->get(pre + "plan"));
      const auto* me = plan.find(opts.name);
      if (!me) refuse(pre, "the front door's plan names no worker '" + opts.name + "'");
      if (plan.model != fingerprint)
        refuse(pre, "worker '" + opts.name + "' holds model " + fingerprint + ", the front door serves " + plan.model);
      if (!st.matches(plan, *me)) st.load(ckpt, plan, *me);
      store->set(pre + "joined/" + opts.name, "host " + opts.address + " device " + me->device + " weights " +
                                                  std::to_string(st.weight_bytes) + " kv_per_position " +
                                                  std::to_string(st.kv_bytes_per_position));
      spdlog::info("generation {}: joining as rank {} of {} (layers {}-{} on {})", gen, me->rank, plan.world_size(),
                   me->first, me->last - 1, me->device);
      // the process group forms once every worker has joined: the front door says so ("go"); a
      // newer generation in the meantime means this one was given up
      if (!await_key(*store, pre + "go", gen, stop)) continue;
      const auto comm = plan.backend == "nccl" ? parse_device(me->device) : c10::Device(c10::kCPU);
      ClusterLink link(*store, pre + "pg/", me->rank, plan.world_size(), opts.address, plan.backend == "nccl", comm,
                       opts.step_timeout);
      spdlog::info("generation {}: serving over {}", gen, link.backend());
      serve(link, plan, *me, st, opts, stop);
    } catch (const Refused& e) {
      spdlog::error("refused: {}", e.what());
      return 2;
    } catch (const std::exception& e) {
      if (stop) break;
      spdlog::warn("cluster link lost (generation {}): {}; joining the next generation", served, brief(e));
      // a broken store connection (the front door restarted, its generations start over): connect again
      try {
        if (store) store->check("gen");
      } catch (const std::exception&) {
        store.reset();
        served = 0;
      }
      std::this_thread::sleep_for(200ms);
    }
  }
  return 0;
}

}  // namespace duet::cloud
