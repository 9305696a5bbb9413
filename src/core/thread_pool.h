// ThreadPool: kiln's own intra-op thread pool (no OpenMP in the core). A pool
// of `threads` runs parallel_for(n, fn): the calling thread and threads-1
// workers take task indices 0..n-1 from one atomic counter; the call returns
// when every task has finished. Workers spin briefly between jobs (a conv
// layer is often only tens of microseconds) and then sleep on a condition
// variable, so an idle pool costs nothing. Results never depend on which
// thread ran a task: kernels split work the same way for any thread count.
// Tested in tests/unit/test_thread_pool.cpp (also under ThreadSanitizer).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace kiln {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // fn(task, thread) for every task in [0, n); `thread` in [0, size()) names
  // the thread running it (for per-thread scratch). Not reentrant: a task must
  // not call parallel_for on the same pool (it runs the inner loop inline).
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    auto call = [](void* ctx, int64_t task, int thread) { (*static_cast<Fn*>(ctx))(task, thread); };
    run(n, const_cast<void*>(static_cast<const void*>(&fn)), call);
  }

 private:
  using Call = void (*)(void*, int64_t, int);
  void run(int64_t n, void* ctx, Call call);
  void worker(int index);
  void work(int thread);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> state_{0};  // generation | closed | workers inside (thread_pool.cpp)
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> in_job_{false};
  std::atomic<bool> stop_{false};
  // The current job; written before its generation opens (release) and read
  // by a worker only after it joined that generation (acquire).
  int64_t n_ = 0;
  void* ctx_ = nullptr;
  Call call_ = nullptr;
};

}  // namespace kiln
