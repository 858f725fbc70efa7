#include "cloud/scheduler.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

namespace duet::cloud {

namespace {

// Queue indices that `want` selects, grouped by key: keys in order of their oldest forward,
// rotated by `turn` (who goes first changes every step), indices oldest first within a key.
template <typename Want>
std::vector<std::pair<std::string, std::deque<size_t>>> by_key(const std::deque<ScheduledForward>& q, Want want,
                                                                uint64_t turn) {
  std::vector<std::pair<std::string, std::deque<size_t>>> groups;
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < q.size(); ++i) {
    if (!want(i)) continue;
    auto [it, fresh] = at.try_emplace(q[i].owner, groups.size());
    if (fresh) groups.push_back({q[i].owner, {}});
    groups[it->second].second.push_back(i);
  }
  if (!groups.empty()) std::rotate(groups.begin(), groups.begin() + static_cast<long>(turn % groups.size()), groups.end());
  return groups;
}

}  // namespace

struct Scheduler::Pick {
  std::vector<PlannedRow> rows;
  std::vector<bool> taken;  // by queue index
  int64_t tokens = 0;
  int64_t max_rows = 0;
};

Scheduler::Scheduler(SchedulerLimits limits) : limits_(limits) {
  if (limits_.max_batch_tokens < 1 || limits_.max_batch_rows < 1 || limits_.prefill_chunk < 1 ||
      limits_.min_prefill_tokens < 1)
    throw std::invalid_argument(
        "scheduler limits must be at least 1 (max_batch_tokens, max_batch_rows, prefill_chunk, min_prefill_tokens)");
  if (limits_.max_step_seconds < 0)
    throw std::invalid_argument("max_step_seconds must be 0 (no cap) or positive");
  if (!(limits_.step_latency_factor == 0 || limits_.step_latency_factor > 1.0))
    throw std::invalid_argument("step_latency_factor must be 0 (no cap) or more than 1 (a step may last that many "
                                "decode-only steps), not " + std::to_string(limits_.step_latency_factor));
}

void Scheduler::add(const ScheduledForward& f) { queue_.push_back(f); }

// Round robin over keys, one decode row per key per round, until the step's rows or tokens run out.
void Scheduler::take_decode_rows(Pick& p) {
  auto groups = by_key(queue_, [&](size_t i) { return queue_[i].remaining() == 1; }, turn_);
  bool any = true;
  while (any) {
    any = false;
    for (auto& [key, idx] : groups) {
      if (idx.empty()) continue;
      if (int64_t(p.rows.size()) >= p.max_rows || p.tokens >= limits_.max_batch_tokens) return;
      const size_t i = idx.front();
      idx.pop_front();
      const ScheduledForward& f = queue_[i];
      p.rows.push_back({f.job, f.start + f.done, 1});
      running_.push_back(f);
      p.taken[i] = true;
      ++p.tokens;
      any = true;
    }
  }
}

// The budget shared equally by the keys with prefill waiting (what a key cannot use goes to the
// others); within a key, oldest first, each forward one chunk of at most prefill_chunk.
void Scheduler::take_prefill(Pick& p, int64_t budget) {
  auto groups = by_key(queue_, [&](size_t i) { return !p.taken[i] && queue_[i].remaining() > 1; }, turn_);
  std::map<size_t, size_t> row_of;  // queue index -> its row in p.rows
  int64_t left = budget;
  while (left > 0 && !groups.empty()) {
    const int64_t share = std::max<int64_t>(1, left / int64_t(groups.size()));
    for (auto g = groups.begin(); g != groups.end() && left > 0;) {
      auto& idx = g->second;
      for (int64_t give = std::min(share, left); give > 0 && !idx.empty();) {
        const size_t i = idx.front();
        const ScheduledForward& f = queue_[i];
        auto [it, fresh] = row_of.try_emplace(i, p.rows.size());
        if (fresh) {
          if (int64_t(p.rows.size()) >= p.max_rows) return;
          p.rows.push_back({f.job, f.start + f.done, 0});
          running_.push_back(f);
          p.taken[i] = true;
        }
        PlannedRow& r = p.rows[it->second];
        const int64_t cap = std::min(f.remaining(), limits_.prefill_chunk);
        const int64_t n = std::min(cap - r.n, give);
        r.n += n;
        give -= n;
        left -= n;
        p.tokens += n;
        if (r.n == cap) idx.pop_front();
      }
      g = idx.empty() ? groups.erase(g) : std::next(g);
    }
  }
}

std::vector<PlannedRow> Scheduler::next(bool decoders_active, int64_t max_rows) {
  Pick p;
  p.max_rows = max_rows > 0 ? std::min(max_rows, limits_.max_batch_rows) : limits_.max_batch_rows;
  p.taken.assign(queue_.size(), false);
  take_decode_rows(p);
  int64_t budget = limits_.max_batch_tokens - p.tokens;
  if (budget > 0) {
    PrefillBudget b;
    b.decodes = !p.rows.empty() || decoders_active;
    b.factor = limits_.step_latency_factor;
    b.max_step_s = limits_.max_step_seconds;
    b.floor = limits_.min_prefill_tokens;
    b.ceiling = budget;
    b.amortize_fixed = limits_.amortize_fixed_prefill;
    budget = cost_.prefill_budget(b);
  }
  if (budget > 0) take_prefill(p, budget);
  std::deque<ScheduledForward> rest;
  for (size_t i = 0; i < queue_.size(); ++i)
    if (!p.taken[i]) rest.push_back(queue_[i]);
  queue_.swap(rest);
  ++turn_;
  return std::move(p.rows);
}

std::vector<uint64_t> Scheduler::complete(const std::vector<PlannedRow>& rows) {
  std::vector<uint64_t> done;
  std::vector<ScheduledForward> unfinished, still_running;
  for (auto& f : running_) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const PlannedRow& r) { return r.job == f.job; });
    if (it == rows.end()) {  // in another step still in flight
      still_running.push_back(f);
      continue;
    }
    f.done += it->n;
    if (f.remaining() <= 0) done.push_back(f.job);
    else unfinished.push_back(f);
  }
  running_.swap(still_running);
  // a forward with positions left goes back in front of younger ones: it keeps its age
  for (auto it = unfinished.rbegin(); it != unfinished.rend(); ++it) {
    auto pos = std::find_if(queue_.begin(), queue_.end(), [&](const ScheduledForward& q) { return q.arrived > it->arrived; });
    queue_.insert(pos, *it);
  }
  return done;
}

std::vector<uint64_t> Scheduler::fail(const std::vector<PlannedRow>& rows) {
  std::vector<uint64_t> jobs;
  std::vector<ScheduledForward> still_running;
  for (const auto& f : running_) {
    const bool in_step = std::any_of(rows.begin(), rows.end(), [&](const PlannedRow& r) { return r.job == f.job; });
    if (in_step) jobs.push_back(f.job);
    else still_running.push_back(f);
  }
  running_.swap(still_running);
  return jobs;
}

size_t Scheduler::decode_waiting() const {
  return static_cast<size_t>(
      std::count_if(queue_.begin(), queue_.end(), [](const ScheduledForward& f) { return f.remaining() == 1; }));
}

bool Scheduler::cancel(uint64_t job) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const ScheduledForward& f) { return f.job == job; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

}  // namespace duet::cloud
