#pragma once
// LibTorch's c10 logging defines CHECK (glog style), which silently replaces doctest's: include
// LibTorch first, then doctest, and give CHECK back to doctest for the test files.
#include <torch/torch.h>

#ifdef CHECK
#undef CHECK
#endif
#include <doctest/doctest.h>
#ifndef CHECK
#define CHECK DOCTEST_CHECK
#endif
