#pragma once
// Waiting without sleeping, for a bounded span after activity. A thread asleep in poll() or on a
// condition variable pays a wake-up when its input comes (the kernel must schedule it, and in a VM
// may first have to wake an idle virtual CPU); one that polls without sleeping for a short span
// after each message catches the next one at once, at the price of a core kept busy for that span.
// Off (span 0) unless asked for: on a machine whose cores also run the model it only takes time
// from the model. Header-only, no LibTorch.
//   SpinWindow spin(100us);  spin.touch(now);  spin.active(now) -> poll with timeout 0
#include <chrono>
#include <cstdint>

namespace duet {

// The longest span any setting may ask for (0.1 s): a short busy wait, not a timeout.
inline constexpr int64_t kMaxSpinUs = 100000;

class SpinWindow {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SpinWindow(std::chrono::microseconds span = std::chrono::microseconds(0)) : span_(span) {}
  // activity seen at `now`: keep polling until now + span
  void touch(Clock::time_point now) {
    if (span_.count() > 0) until_ = now + span_;
  }
  bool active(Clock::time_point now) const { return now < until_; }
  Clock::time_point until() const { return until_; }

 private:
  std::chrono::microseconds span_;
  Clock::time_point until_{};
};

}  // namespace duet
