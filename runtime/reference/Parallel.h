//===- Parallel.h - Minimal thread fan-out for the reference ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// One helper: run independent tasks 0 .. n-1 on a few std::threads. Tasks
// write disjoint outputs, so results never depend on the thread count or on
// scheduling; threads only shorten long-context tests.
//
//===----------------------------------------------------------------------===//
#ifndef FP_REFERENCE_PARALLEL_H
#define FP_REFERENCE_PARALLEL_H

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace fp::ref::detail {

/// The number of workers `requested` means (0: one per hardware thread).
inline int resolveThreads(int requested) {
  if (requested > 0)
    return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

/// Calls fn(task, worker) for every task in [0, numTasks), worker in
/// [0, workers). Tasks are handed out in increasing order through an atomic
/// counter (callers order tasks largest-first for balance); `worker` lets a
/// task reuse per-worker scratch memory.
template <typename Fn>
void parallelFor(int64_t numTasks, int requestedThreads, Fn &&fn) {
  int workers = static_cast<int>(
      std::min<int64_t>(resolveThreads(requestedThreads), numTasks));
  if (workers <= 1) {
    for (int64_t t = 0; t < numTasks; ++t)
      fn(t, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  auto loop = [&](int worker) {
    for (int64_t t = next.fetch_add(1); t < numTasks; t = next.fetch_add(1))
      fn(t, worker);
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (int w = 1; w < workers; ++w)
    threads.emplace_back(loop, w);
  loop(0);
  for (std::thread &thread : threads)
    thread.join();
}

} // namespace fp::ref::detail

#endif // FP_REFERENCE_PARALLEL_H
