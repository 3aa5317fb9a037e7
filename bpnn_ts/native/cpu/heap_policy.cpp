// The heap policy of a process that loads the op library (glibc only), set once when the library
// loads. An evaluation allocates and frees some tens of MB of pair data (a 1,080-atom water box:
// ~10 MB). With glibc's defaults the freed top of the heap goes back to the system at the end
// of every call and the next call faults every page in again: ~8 % of a float64 call on one
// thread, ~12 % on two (measured on the n2p2 water box, docs/performance.md). Here blocks below
// 64 MB come from the heap and up to 512 MB of freed heap is kept for the next call.
// BPNN_KEEP_FREED_MEMORY=0 in the environment leaves glibc's defaults.
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace bpnn_cpu {
namespace {

constexpr int kLargestHeapBlock = 64 << 20;  // bytes; larger blocks are mapped (and unmapped) as before
constexpr int kKeptFreeHeap = 512 << 20;     // bytes of freed heap top kept, not returned

struct HeapPolicy {
  HeapPolicy() {
#if defined(__GLIBC__)
    const char* setting = std::getenv("BPNN_KEEP_FREED_MEMORY");
    if (setting != nullptr && std::strcmp(setting, "0") == 0) return;
    mallopt(M_MMAP_THRESHOLD, kLargestHeapBlock);
    mallopt(M_TRIM_THRESHOLD, kKeptFreeHeap);
#endif
  }
};

const HeapPolicy heap_policy;

}  // namespace
}  // namespace bpnn_cpu
