//===- GuardedPage.h - Structs that end at an unmapped page -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// For the struct_size tests: a versioned struct placed so that its last
// byte is the last readable byte; reading past its struct_size faults.
//
//===----------------------------------------------------------------------===//
#ifndef FP_UNITTESTS_API_GUARDEDPAGE_H
#define FP_UNITTESTS_API_GUARDEDPAGE_H

#include <cstddef>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

/// A readable page followed by an inaccessible one: a struct placed at the
/// end of the first page faults on any read past its size.
class GuardedPage {
public:
  GuardedPage() {
    pageSize_ = size_t(sysconf(_SC_PAGESIZE));
    void *pages = mmap(nullptr, 2 * pageSize_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
      return;
    base_ = static_cast<char *>(pages);
    if (mprotect(base_ + pageSize_, pageSize_, PROT_NONE) != 0) {
      munmap(base_, 2 * pageSize_);
      base_ = nullptr;
    }
  }
  ~GuardedPage() {
    if (base_)
      munmap(base_, 2 * pageSize_);
  }
  GuardedPage(const GuardedPage &) = delete;
  GuardedPage &operator=(const GuardedPage &) = delete;
  bool ok() const { return base_ != nullptr; }
  /// A copy of the first `bytes` of `value` ending exactly at the guard.
  template <typename T> const T *placeAtEnd(const T &value, size_t bytes) {
    char *at = base_ + pageSize_ - bytes;
    std::memcpy(at, &value, bytes);
    return reinterpret_cast<const T *>(at);
  }

private:
  size_t pageSize_ = 0;
  char *base_ = nullptr;
};

#endif // FP_UNITTESTS_API_GUARDEDPAGE_H
