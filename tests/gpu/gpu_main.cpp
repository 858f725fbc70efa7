// doctest's main for the gpu label: without a CUDA device the suite is skipped (exit 77, which
// ctest reports as skipped), never passed.
#include <torch/torch.h>

#ifdef CHECK
#undef CHECK
#endif
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::puts("no CUDA device: the gpu tests are skipped");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
