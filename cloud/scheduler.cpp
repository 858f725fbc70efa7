#include "cloud/scheduler.hpp"

#include <algorithm>
#include <stdexcept>

namespace duet::cloud {

Scheduler::Scheduler(SchedulerLimits limits) : limits_(limits) {
  if (limits_.max_batch_tokens < 1 || limits_.max_batch_rows < 1 || limits_.prefill_chunk < 1)
    throw std::invalid_argument("scheduler limits must be at least 1 (max_batch_tokens, max_batch_rows, prefill_chunk)");
}

void Scheduler::add(const ScheduledForward& f) { queue_.push_back(f); }

std::vector<PlannedRow> Scheduler::next() {
  if (!running_.empty()) throw std::logic_error("Scheduler::next before the last step was completed or failed");
  std::vector<PlannedRow> rows;
  int64_t budget = limits_.max_batch_tokens;
  std::vector<bool> taken(queue_.size(), false);
  auto take = [&](size_t i, int64_t n) {
    const ScheduledForward& f = queue_[i];
    rows.push_back({f.job, f.start + f.done, n});
    running_.push_back(f);
    taken[i] = true;
    budget -= n;
  };
  // decode rows: one position each; they are what latency is made of
  for (size_t i = 0; i < queue_.size() && budget > 0 && int64_t(rows.size()) < limits_.max_batch_rows; ++i)
    if (queue_[i].remaining() == 1) take(i, 1);
  // prefill chunks in the budget left
  for (size_t i = 0; i < queue_.size() && budget > 0 && int64_t(rows.size()) < limits_.max_batch_rows; ++i)
    if (!taken[i] && queue_[i].remaining() > 1) take(i, std::min({queue_[i].remaining(), limits_.prefill_chunk, budget}));
  std::deque<ScheduledForward> rest;
  for (size_t i = 0; i < queue_.size(); ++i)
    if (!taken[i]) rest.push_back(queue_[i]);
  queue_.swap(rest);
  return rows;
}

std::vector<uint64_t> Scheduler::complete(const std::vector<PlannedRow>& rows) {
  std::vector<uint64_t> done;
  std::vector<ScheduledForward> unfinished;
  for (auto& f : running_) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const PlannedRow& r) { return r.job == f.job; });
    if (it != rows.end()) f.done += it->n;
    if (f.remaining() <= 0) done.push_back(f.job);
    else unfinished.push_back(f);
  }
  running_.clear();
  // a forward with positions left goes back in front of younger ones: it keeps its age
  for (auto it = unfinished.rbegin(); it != unfinished.rend(); ++it) {
    auto pos = std::find_if(queue_.begin(), queue_.end(), [&](const ScheduledForward& q) { return q.arrived > it->arrived; });
    queue_.insert(pos, *it);
  }
  return done;
}

std::vector<uint64_t> Scheduler::fail(const std::vector<PlannedRow>&) {
  std::vector<uint64_t> jobs;
  for (const auto& f : running_) jobs.push_back(f.job);
  running_.clear();
  return jobs;
}

size_t Scheduler::decode_waiting() const {
  return static_cast<size_t>(
      std::count_if(queue_.begin(), queue_.end(), [](const ScheduledForward& f) { return f.remaining() == 1; }));
}

std::chrono::steady_clock::time_point Scheduler::oldest_arrival() const {
  std::chrono::steady_clock::time_point t{};
  for (const auto& f : queue_)
    if (t == std::chrono::steady_clock::time_point{} || f.arrived < t) t = f.arrived;
  return t;
}

bool Scheduler::cancel(uint64_t job) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const ScheduledForward& f) { return f.job == job; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

}  // namespace duet::cloud
