#include "cloud/remote_stage.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <thread>

#include "cloud/cluster_link.hpp"
#include "cloud/stage_plan.hpp"
#include "common/dtype.hpp"

namespace duet::cloud {

namespace sw = step_wire;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct RemoteChain::Impl {
  WorkerPlan plan;
  ClusterOptions opts;
  int64_t fingerprint = 0;
  c10::ScalarType dtype;
  ClusterStore store;
  int first_rank = 1, last_rank = 1;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::unique_ptr<ClusterLink> link;  // the formed generation; null while forming
  std::vector<RemoteWorker> workers;
  std::deque<int64_t> in_flight;
  int64_t attempt = 0;      // the store's "gen": one per try to form
  uint64_t formed = 0;      // generations formed
  std::string missing = "the stage workers have not joined yet";
  std::string last_loss;
  std::atomic<bool> stop{false};
  std::thread joiner, heart;

  std::string reason_locked() const {
    if (link) return {};
    std::string r = "the stage cluster is not formed: " + missing;
    if (!last_loss.empty()) r += " (last loss: " + last_loss + ")";
    return r;
  }

  // Drops the generation: its steps fail, the joiner forms the next. Caller holds mu.
  void lose_locked(const std::string& why) {
    if (!link) return;
    spdlog::error("stage cluster generation {} lost: {}", attempt, why);
    last_loss = why;
    link.reset();  // closes its connections: the other workers see it and rejoin
    in_flight.clear();
    missing = "re-forming after a loss";
    cv.notify_all();
  }

  // Waits until every worker has written pre + key + its name (`what` names the wait in the
  // reason and the log). False: stopped.
  bool await_workers(int64_t gen, const std::string& pre, const std::string& key, const char* what) {
    auto last_log = Clock::now();
    std::vector<std::string> refused_logged;
    while (!stop) {
      std::vector<std::string> absent;
      for (const auto& w : plan.workers) {
        if (store.check(pre + key + w.name)) continue;
        std::string label = "'" + w.name + "' (" + w.device + "@" + w.name + "=" +
                            (plan.auto_layers ? std::string("auto")
                                              : std::to_string(w.first) + "-" + std::to_string(w.last - 1)) +
                            ")";
        if (store.check(pre + "refused/" + w.name)) {
          const auto why = store.get(pre + "refused/" + w.name);
          label += " refused: " + why;
          if (std::find(refused_logged.begin(), refused_logged.end(), w.name) == refused_logged.end()) {
            spdlog::error("stage worker '{}' refused to join: {}", w.name, why);
            refused_logged.push_back(w.name);
          }
        }
        absent.push_back(label);
      }
      if (absent.empty()) return true;
      std::string m = "waiting for worker";
      m += absent.size() > 1 ? "s " : " ";
      for (size_t i = 0; i < absent.size(); ++i) m += (i ? ", " : "") + absent[i];
      m += std::string(" ") + what;
      {
        std::lock_guard<std::mutex> lock(mu);
        missing = m;
      }
      if (Clock::now() - last_log > 5s) {
        spdlog::warn("stage cluster generation {}: {}", gen, m);
        last_log = Clock::now();
      }
      // a worker that joined a newer generation elsewhere would never come: none exists, we own "gen"
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // This generation's plan under an automatic split: the workers' layers in proportion to what
  // each offered (cloud/worker_plan.hpp: the ask).
  WorkerPlan split_by_offers(int64_t gen, const std::string& pre) {
    WorkerPlan p = plan;
    std::vector<int64_t> free;
    for (const auto& w : plan.workers) free.push_back(parse_offer(store.get(pre + "offer/" + w.name)));
    const int64_t begin = plan.workers.front().first, end = plan.workers.back().last;
    const auto counts = balance_by_offers(end - begin, free);
    std::string said;
    for (size_t i = 0, at = static_cast<size_t>(begin); i < p.workers.size(); ++i) {
      p.workers[i].first = static_cast<int64_t>(at);
      p.workers[i].last = static_cast<int64_t>(at += counts[i]);
      said += (i ? ", " : "") + p.workers[i].name + " offered " +
              (free[i] > 0 ? std::to_string(free[i] >> 20) + " MiB" : std::string("an unknown amount")) + " -> layers " +
              std::to_string(p.workers[i].first) + "-" + std::to_string(p.workers[i].last - 1);
    }
    spdlog::info("stage cluster generation {}: automatic split: {}", gen, said);
    return p;
  }

  // One try to form a generation: publish (after the workers' offers for an automatic split),
  // wait for every worker, connect. False: try again.
  bool form_once() {
    int64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu);
      gen = ++attempt;
    }
    const std::string pre = "g" + std::to_string(gen) + "/";
    WorkerPlan p = plan;
    if (plan.auto_layers) {
      store.set(pre + "ask", plan.ask_text());  // before "gen": a worker that sees gen finds it
      store.set("gen", std::to_string(gen));
      if (!await_workers(gen, pre, "offer/", "to offer its memory (an automatic split)")) return false;
      p = split_by_offers(gen, pre);
      store.set(pre + "plan", p.to_text());
    } else {
      store.set(pre + "plan", p.to_text());
      store.set("gen", std::to_string(gen));
    }
    if (!await_workers(gen, pre, "joined/", "to join")) return false;
    std::vector<RemoteWorker> ws;
    for (const auto& w : p.workers) {
      RemoteWorker r{w.name, w.device, "-", w.first, w.last};
      std::istringstream in(store.get(pre + "joined/" + w.name));
      std::string k;
      while (in >> k) {
        if (k == "host") in >> r.host;
        else if (k == "weights") in >> r.weight_bytes;
        else if (k == "kv_per_position") in >> r.kv_bytes_per_position;
        else in >> k;  // a field this build does not show
      }
      ws.push_back(r);
    }
    const auto comm = plan.backend == "nccl" ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
    store.set(pre + "go", "1");
    try {
      auto l = std::make_unique<ClusterLink>(store, pre + "pg/", 0, plan.world_size(), opts.address,
                                             plan.backend == "nccl", comm, opts.step_timeout);
      std::lock_guard<std::mutex> lock(mu);
      link = std::move(l);
      workers = std::move(ws);
      fingerprint = p.fingerprint();  // steps carry this generation's plan
      ++formed;
      spdlog::info("stage cluster ready: generation {} ({} workers over {})", gen, plan.workers.size(), link->backend());
      cv.notify_all();
      return true;
    } catch (const std::exception& e) {
      spdlog::warn("stage cluster generation {} did not form: {}", gen, brief(e));
      return false;
    }
  }

  void join_loop() {
    while (!stop) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !link; });
      }
      if (stop) break;
      try {
        form_once();
      } catch (const std::exception& e) {
        spdlog::error("stage cluster: {}", brief(e));
        std::this_thread::sleep_for(200ms);
      }
    }
  }

  void heart_loop() {
    int64_t beat = 0;
    while (!stop) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, opts.heartbeat, [&] { return stop.load(); });
        if (stop || !link || !in_flight.empty()) continue;
        sw::Header h;
        h.kind = sw::Kind::heartbeat;
        h.step = --beat;  // negative: never a step's number
        h.plan = fingerprint;
        h.hidden = plan.hidden;
        try {
          link->send(first_rank, h, {}, {});
          auto m = link->recv(last_rank, limits(), dtype, opts.step_timeout);
          if (m.header.kind != sw::Kind::heartbeat || m.header.step != h.step)
            throw std::runtime_error("the chain answered a heartbeat with something else");
        } catch (const std::exception& e) {
          lose_locked("heartbeat: " + brief(e));
        }
      }
    }
  }

  sw::Limits limits() const {
    sw::Limits l;
    l.hidden = plan.hidden;
    l.max_ids = plan.num_blocks * 4 + sw::kMinRowWords * l.max_rows;
    return l;
  }
};

RemoteChain::RemoteChain(WorkerPlan plan, ClusterOptions opts) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.plan = std::move(plan);
  m.opts = std::move(opts);
  m.fingerprint = m.plan.fingerprint();
  m.dtype = parse_dtype(m.plan.dtype);
  m.first_rank = m.plan.workers.front().rank;
  m.last_rank = m.plan.workers.back().rank;
  for (const auto& w : m.plan.workers) m.workers.push_back({w.name, w.device, "-", w.first, w.last});
  m.store = ClusterStore::serve(m.opts.address, m.opts.store_port, m.opts.allow_wildcard_store, m.opts.step_timeout);
  spdlog::info("stage cluster: store on {}:{} (plan fingerprint {})", m.opts.address, m.store.port(), m.fingerprint);
  if (!store_binds_one_address())
    spdlog::warn("this LibTorch's c10d store listens on every interface, not only {} (allowed by "
                 "cluster_allow_wildcard_store): firewall port {} to the cluster network",
                 m.opts.address, m.store.port());
  m.joiner = std::thread([&m] { m.join_loop(); });
  m.heart = std::thread([&m] { m.heart_loop(); });
}

RemoteChain::~RemoteChain() {
  impl_->stop = true;
  impl_->cv.notify_all();
  impl_->joiner.join();
  impl_->heart.join();
}

uint16_t RemoteChain::store_port() const { return impl_->store.port(); }
int64_t RemoteChain::plan_fingerprint() const { return impl_->fingerprint; }

void RemoteChain::submit(int64_t step, const StepBatch& batch, const torch::Tensor& x) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.link) throw StageUnavailable(m.reason_locked());
  sw::Header h;
  h.step = step;
  h.plan = m.fingerprint;
  h.rows = static_cast<int64_t>(batch.rows.size());
  h.tokens = batch.tokens();
  h.hidden = m.plan.hidden;
  const auto rows = sw::encode_rows(batch, m.plan.block_size);
  h.ids = static_cast<int64_t>(rows.size());
  try {
    m.link->send(m.first_rank, h, rows, x.to(torch::kCPU, m.dtype));
  } catch (const std::exception& e) {
    m.lose_locked("sending step " + std::to_string(step) + ": " + brief(e));
    throw StageUnavailable("the stage cluster broke while this step was sent: " + brief(e));
  }
  m.in_flight.push_back(step);
}

torch::Tensor RemoteChain::collect(int64_t step) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.link || m.in_flight.empty() || m.in_flight.front() != step)
    throw StageUnavailable("step " + std::to_string(step) + " is not in flight (the generation it ran in was lost): " +
                           m.reason_locked());
  ClusterLink::Message r;
  try {
    r = m.link->recv(m.last_rank, m.limits(), m.dtype, m.opts.step_timeout);
    if (r.header.step != step)
      throw std::runtime_error("the chain answered step " + std::to_string(r.header.step) + " instead of " +
                               std::to_string(step));
  } catch (const std::exception& e) {
    m.lose_locked("step " + std::to_string(step) + ": " + brief(e));
    throw StageUnavailable("a stage worker was lost while step " + std::to_string(step) + " ran: " + brief(e));
  }
  m.in_flight.pop_front();
  if (r.header.kind == sw::Kind::error)
    throw std::runtime_error("a stage worker refused step " + std::to_string(step) + ": " + sw::to_string(r.header.code));
  return r.x;
}

bool RemoteChain::ready() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->link != nullptr;
}

std::string RemoteChain::unavailable_reason() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->reason_locked();
}

uint64_t RemoteChain::generation() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->formed;
}

bool RemoteChain::wait_ready(std::chrono::milliseconds limit) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, limit, [&] { return impl_->link != nullptr; });
}

std::vector<RemoteWorker> RemoteChain::workers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->workers;
}

const char* RemoteChain::backend() const { return impl_->plan.backend == "nccl" ? "nccl" : "gloo"; }

}  // namespace duet::cloud
