#pragma once
// Removes a folder and everything in it with POSIX nftw. Not std::filesystem::remove_all: in the
// GPU build (LibTorch 2.11 from the PyTorch wheel) remove_all crashes the process with a call
// through a null pointer (seen in tests/integration's harness and in test_golden).
#include <ftw.h>

#include <cstdio>
#include <string>

namespace duet::test {

inline void remove_tree(const std::string& path) {
  ::nftw(path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
         FTW_DEPTH | FTW_PHYS);
}

}  // namespace duet::test
