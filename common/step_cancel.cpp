#include "common/step_cancel.hpp"

namespace duet {

namespace {
thread_local const std::atomic<bool>* t_cancel = nullptr;
}

StepCancelScope::StepCancelScope(const std::atomic<bool>* flag) : previous_(t_cancel) { t_cancel = flag; }
StepCancelScope::~StepCancelScope() { t_cancel = previous_; }

void throw_if_step_cancelled() {
  if (t_cancel && t_cancel->load(std::memory_order_relaxed)) throw StepCancelled();
}

}  // namespace duet
