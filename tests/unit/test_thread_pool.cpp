// ThreadPool (core/thread_pool.h): parallel_for runs every task exactly once
// for any task count and pool size, never gives one thread index to two tasks
// running at once, survives many small jobs in a row, runs a nested
// parallel_for inline on the calling thread, serializes two outside callers,
// and joins cleanly when destroyed idle. Built into kiln_unit_tests and, alone
// with the CPU determinism test, into kiln_thread_tests, which scripts/test.sh
// runs under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace kiln {
namespace {

TEST(ThreadPool, SizeIsAtLeastOne) {
  EXPECT_EQ(ThreadPool(0).size(), 1);
  EXPECT_EQ(ThreadPool(-3).size(), 1);
  EXPECT_EQ(ThreadPool(1).size(), 1);
  EXPECT_EQ(ThreadPool(4).size(), 4);
}

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 1000}) {
      std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
      std::atomic<int> bad_thread{0};
      pool.parallel_for(n, [&](int64_t task, int thread) {
        if (task < 0 || task >= n) {
          bad_thread.fetch_add(1000);
          return;
        }
        if (thread < 0 || thread >= threads) bad_thread.fetch_add(1);
        runs[size_t(task)].fetch_add(1);
      });
      EXPECT_EQ(bad_thread.load(), 0) << "threads " << threads << " n " << n;
      for (int64_t t = 0; t < n; ++t) ASSERT_EQ(runs[size_t(t)].load(), 1) << "threads " << threads << " n " << n << " task " << t;
    }
  }
}

// Per-thread scratch indexed by `thread` is safe only if no two tasks run
// under the same index at the same time.
TEST(ThreadPool, ThreadIndexIsNeverSharedByConcurrentTasks) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> busy(4);
  std::atomic<int> clashes{0};
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 200; ++job)
    pool.parallel_for(64, [&](int64_t task, int thread) {
      if (busy[size_t(thread)].exchange(1) != 0) clashes.fetch_add(1);
      int64_t local = 0;
      for (int i = 0; i < 200; ++i) local += (task * 31 + i) % 7;  // a little work
      sum.fetch_add(local);
      busy[size_t(thread)].store(0);
    });
  EXPECT_EQ(clashes.load(), 0);
  int64_t one = 0;
  for (int64_t task = 0; task < 64; ++task)
    for (int i = 0; i < 200; ++i) one += (task * 31 + i) % 7;
  EXPECT_EQ(sum.load(), 200 * one);
}

TEST(ThreadPool, ManySmallJobsInARow) {
  // 10000 jobs in all; with more threads than cores every job waits for a
  // descheduled worker to check in, so this is slow on a small machine.
  for (int threads : {2, 4}) {
    ThreadPool pool(threads);
    std::atomic<int64_t> total{0};
    int64_t expected = 0;
    for (int job = 0; job < 5000; ++job) {
      const int64_t n = 2 + job % 7;
      pool.parallel_for(n, [&](int64_t task, int) { total.fetch_add(task + 1); });
      expected += n * (n + 1) / 2;
    }
    EXPECT_EQ(total.load(), expected) << "threads " << threads;
  }
}

// Writes by the tasks are visible to the caller once parallel_for returns
// (plain, non-atomic stores).
TEST(ThreadPool, TaskWritesAreVisibleAfterReturn) {
  ThreadPool pool(3);
  std::vector<int64_t> out(997);
  for (int job = 0; job < 300; ++job) {
    pool.parallel_for(int64_t(out.size()), [&](int64_t task, int) { out[size_t(task)] = task * job; });
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], int64_t(i) * job) << "job " << job;
  }
}

TEST(ThreadPool, NestedParallelForRunsInlineAndCompletes) {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    constexpr int64_t kOuter = 16, kInner = 9;
    std::vector<std::atomic<int>> runs(size_t(kOuter * kInner));
    std::atomic<int> moved{0};
    pool.parallel_for(kOuter, [&](int64_t o, int) {
      const std::thread::id me = std::this_thread::get_id();
      pool.parallel_for(kInner, [&](int64_t i, int) {
        if (std::this_thread::get_id() != me) moved.fetch_add(1);
        runs[size_t(o * kInner + i)].fetch_add(1);
      });
    });
    EXPECT_EQ(moved.load(), 0) << "inner tasks ran on another thread (threads " << threads << ")";
    for (size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i].load(), 1) << "threads " << threads << " task " << i;
    // The pool still runs ordinary jobs afterwards.
    std::atomic<int> after{0};
    pool.parallel_for(100, [&](int64_t, int) { after.fetch_add(1); });
    EXPECT_EQ(after.load(), 100);
  }
}

// Two outside threads sharing one pool: each call completes with every task
// run once (the second caller runs inline while the first has a job).
TEST(ThreadPool, TwoCallersShareAPool) {
  ThreadPool pool(3);
  std::atomic<int64_t> total[2] = {0, 0};
  auto caller = [&](int who) {
    for (int job = 0; job < 2000; ++job)
      pool.parallel_for(5, [&](int64_t task, int) { total[who].fetch_add(task + 1); });
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join();
  b.join();
  EXPECT_EQ(total[0].load(), 2000 * 15);
  EXPECT_EQ(total[1].load(), 2000 * 15);
}

TEST(ThreadPool, DestroyIdlePoolJoins) {
  // Never used: workers may not have started yet.
  for (int i = 0; i < 50; ++i) ThreadPool pool(4);
  // Used once, then destroyed while workers spin.
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(3);
    std::atomic<int> c{0};
    pool.parallel_for(10, [&](int64_t, int) { c.fetch_add(1); });
    EXPECT_EQ(c.load(), 10);
  }
  // Used, then destroyed after the workers went to sleep (they spin ~300 us).
  auto pool = std::make_unique<ThreadPool>(4);
  std::atomic<int> c{0};
  pool->parallel_for(8, [&](int64_t, int) { c.fetch_add(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pool->parallel_for(8, [&](int64_t, int) { c.fetch_add(1); });  // wakes sleeping workers
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pool.reset();
  EXPECT_EQ(c.load(), 16);
}

}  // namespace
}  // namespace kiln
