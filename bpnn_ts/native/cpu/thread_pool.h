// Runs chunks of an index range on torch's intra-op thread count, each thread with its own
// scratch. Knows nothing of ACSF: the ACSF ops (centre_loop.h) pass their per-centre Scratch.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace bpnn_threads {

// Calls work(begin, end, scratch) over chunks of [0, n) on torch's intra-op thread count
// (at::get_num_threads()), one default-constructed Scratch per thread, reused across its chunks;
// rethrows the first error. Own threads, not at::parallel_for: that needs the caller built with
// the OpenMP runtime torch was built with.
template <typename Scratch, typename Work>
void run_in_chunks(int64_t n, Work&& work) {
  constexpr int64_t kChunk = 16;
  const int64_t n_threads = std::min<int64_t>(at::get_num_threads(), (n + kChunk - 1) / kChunk);
  if (n_threads <= 1) {
    Scratch w;
    work(0, n, w);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_lock;
  auto worker = [&] {
    Scratch w;
    try {
      for (int64_t begin = next.fetch_add(kChunk); begin < n; begin = next.fetch_add(kChunk)) {
        work(begin, std::min(n, begin + kChunk), w);
      }
    } catch (...) {
      std::lock_guard<std::mutex> guard(error_lock);
      if (!error) error = std::current_exception();
      next.store(n);
    }
  };
  std::vector<std::thread> threads;
  for (int64_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace bpnn_threads
