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

// state_: job generation in the high 32 bits, bit 31 = closed, low 31 bits =
// workers inside the job. A worker joins only an open job of the generation
// it woke for, by one compare-and-swap; the caller closes the job once all
// tasks are done and no worker is inside. So the caller never waits for a
// worker that has not started (one descheduled by another process: waiting
// for it made every parallel section as slow as the OS's time slice), and a
// late worker never reads the fields of a job that has moved on.
constexpr uint64_t kClosed = uint64_t(1) << 31;
constexpr uint64_t kActiveMask = kClosed - 1;
uint64_t gen_of(uint64_t s) { return s >> 32; }
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  state_.store(kClosed, std::memory_order_relaxed);  // generation 0, closed
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    // A new (closed) generation wakes every worker, which then sees stop_.
    state_.store(((gen_of(state_.load(std::memory_order_acquire)) + 1) << 32) | kClosed, std::memory_order_release);
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Open the next generation with no worker inside (release: the fields above).
    state_.store((gen_of(state_.load(std::memory_order_relaxed)) + 1) << 32, std::memory_order_release);
  }
  wake_.notify_all();
  work(0);
  while (done_.load(std::memory_order_acquire) < n) KILN_PAUSE();
  // Close the job once no worker is inside it.
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s & kActiveMask) != 0) {
      KILN_PAUSE();
      s = state_.load(std::memory_order_acquire);
      continue;
    }
    if (state_.compare_exchange_weak(s, s | kClosed, std::memory_order_acq_rel, std::memory_order_acquire)) break;
  }
  in_job_.store(false, std::memory_order_release);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;  // generation 0 is the closed state of a new pool
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t s = state_.load(std::memory_order_acquire);
    while (gen_of(s) == seen && std::chrono::steady_clock::now() < spin_until) {
      for (int i = 0; i < 64; ++i) KILN_PAUSE();
      s = state_.load(std::memory_order_acquire);
    }
    if (gen_of(s) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return gen_of(state_.load(std::memory_order_acquire)) != seen; });
      s = state_.load(std::memory_order_acquire);
    }
    seen = gen_of(s);
    if (stop_.load(std::memory_order_acquire)) return;
    // Join the job if it is still open and still the one we woke for.
    bool joined = false;
    while (gen_of(s) == seen && !(s & kClosed)) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    work(index);
    state_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace kiln
