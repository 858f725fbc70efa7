#pragma once
// Stopping a step between blocks: a daemon asked to stop must not finish a prefill-heavy step
// first (seconds on a CPU). The compute thread opens a StepCancelScope over a flag; StepRunner
// checks it before each block of an eager step and throws StepCancelled once it is set. A
// thread-local scope (like torch's NoGradGuard) keeps the flag out of every step signature.
// On a GPU the check runs when the host queues a block, not when the GPU runs it.
// No LibTorch here.
#include <atomic>
#include <stdexcept>

namespace duet {

struct StepCancelled : std::runtime_error {
  StepCancelled() : std::runtime_error("the step was stopped between blocks: the daemon is stopping") {}
};

class StepCancelScope {
 public:
  // flag: set means "stop"; nullptr: no cancelling inside this scope (e.g. a CUDA graph capture)
  explicit StepCancelScope(const std::atomic<bool>* flag);
  ~StepCancelScope();
  StepCancelScope(const StepCancelScope&) = delete;
  StepCancelScope& operator=(const StepCancelScope&) = delete;

 private:
  const std::atomic<bool>* previous_;
};

// Throws StepCancelled when this thread's innermost scope's flag is set.
void throw_if_step_cancelled();

}  // namespace duet
