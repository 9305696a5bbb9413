#include "core/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_PAUSE() _mm_pause()
#else
#define KILN_PAUSE() std::this_thread::yield()
#endif

namespace kiln {

namespace {
// How long a worker spins for the next job before sleeping. A resnet18
// forward pass issues a job every ~50-500 us; waking a sleeping thread costs
// ~5-20 us on a VM, so spinning across that gap pays at batch 1.
constexpr auto kSpin = std::chrono::microseconds(300);
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(int thread) {
  for (;;) {
    int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_) break;
    call_(ctx_, task, thread);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t n, void* ctx, Call call) {
  if (n <= 0) return;
  // Inline when alone or for a single task; also when called from inside a
  // task of this pool or from a second thread while a job runs (serially).
  if (threads_ == 1 || n == 1 || in_job_.exchange(true, std::memory_order_acq_rel)) {
    for (int64_t t = 0; t < n; ++t) call(ctx, t, 0);
    return;
  }
  n_ = n;
  ctx_ = ctx;
  call_ = call;
  next_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  checked_in_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  work(0);
  // Every worker checks in once per job, after it stopped reading the job's
  // fields, so the next job may overwrite them.
  while (done_.load(std::memory_order_acquire) < n ||
         checked_in_.load(std::memory_order_acquire) < threads_ - 1)
    KILN_PAUSE();
  in_job_.store(false, std::memory_order_release);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;  // the generation at construction: a job posted before this thread ran is still seen
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t g = generation_.load(std::memory_order_acquire);
    while (g == seen && std::chrono::steady_clock::now() < spin_until) {
      for (int i = 0; i < 64; ++i) KILN_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    work(index);
    checked_in_.fetch_add(1, std::memory_order_acq_rel);
  }
}

}  // namespace kiln
