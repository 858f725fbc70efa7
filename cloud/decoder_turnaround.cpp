#include "cloud/decoder_turnaround.hpp"

#include <algorithm>

namespace duet::cloud {

namespace {

// a new sample's weight: follows a link that changes within a few tokens, and one late packet
// moves the prediction by a quarter of its delay
constexpr double kSmoothing = 0.25;

}  // namespace

void DecoderTurnaround::replied(uint64_t session, Clock::time_point at) {
  auto& d = decoders_[session];
  d.last_reply = at;
  d.awaiting = true;
}

void DecoderTurnaround::arrived(uint64_t session, Clock::time_point at) {
  auto it = decoders_.find(session);
  if (it == decoders_.end() || !it->second.awaiting) return;
  auto& d = it->second;
  d.awaiting = false;
  const double s = std::max(0.0, std::chrono::duration<double>(at - d.last_reply).count());
  if (s * 1e3 > double(kMemory.count())) return;  // a pause, not a turnaround
  d.turnaround_s = d.turnaround_s < 0 ? s : (1 - kSmoothing) * d.turnaround_s + kSmoothing * s;
  const double ms = s * 1e3;
  size_t b = 0;
  while (b + 1 < kBuckets && ms > kBucketsMs[b]) ++b;
  ++hist_[b];
}

void DecoderTurnaround::forget(uint64_t session) { decoders_.erase(session); }

size_t DecoderTurnaround::recent(Clock::time_point now, std::chrono::milliseconds window) {
  size_t n = 0;
  for (auto it = decoders_.begin(); it != decoders_.end();) {
    const auto age = now - it->second.last_reply;
    if (age > kMemory) {
      it = decoders_.erase(it);
      continue;
    }
    n += age <= window;
    ++it;
  }
  return n;
}

size_t DecoderTurnaround::due_by(Clock::time_point deadline) const {
  size_t n = 0;
  for (const auto& [id, d] : decoders_) {
    if (!d.awaiting || d.turnaround_s < 0) continue;
    n += d.last_reply + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(d.turnaround_s)) <=
         deadline;
  }
  return n;
}

bool worth_waiting(size_t decodes_waiting, size_t due, double remaining_s, double step_s) {
  if (due == 0 || remaining_s <= 0) return false;
  return double(decodes_waiting) * remaining_s < double(due) * step_s;
}

double DecoderTurnaround::quantile_ms(double q) const {
  uint64_t total = 0;
  for (auto c : hist_) total += c;
  if (total == 0) return 0;
  const double want = q * double(total);
  uint64_t cum = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    cum += hist_[b];
    if (double(cum) >= want) return b + 1 < kBuckets ? kBucketsMs[b] : kBucketsMs[kBuckets - 2] * 2;
  }
  return kBucketsMs[kBuckets - 2] * 2;
}

}  // namespace duet::cloud
