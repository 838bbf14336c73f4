#include "fulcrum/thread_index.h"

#include <mutex>
#include <set>

namespace fulcrum::internal {
namespace {

struct FreeIndices {
  std::mutex mu;
  std::set<size_t> returned;  // guarded by mu
  size_t next = 0;            // guarded by mu

  size_t Take() {
    std::lock_guard<std::mutex> lock(mu);
    if (returned.empty()) return next++;
    const size_t i = *returned.begin();
    returned.erase(returned.begin());
    return i;
  }
  void Give(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    returned.insert(i);
  }
};

FreeIndices& Registry() {
  static auto* free = new FreeIndices;  // never destroyed: threads may exit during teardown
  return *free;
}

// The fast path reads a trivially destructible thread_local; the holder, whose destructor gives
// the index back, is touched only on a thread's first call.
thread_local size_t t_index = kNoThreadIndex;
thread_local bool t_exited = false;

struct Holder {
  const size_t index = Registry().Take();
  ~Holder() {
    t_index = kNoThreadIndex;
    t_exited = true;
    Registry().Give(index);
  }
};

size_t FirstCall() {
  if (t_exited) return kNoThreadIndex;
  thread_local const Holder holder;
  t_index = holder.index;
  return t_index;
}

}  // namespace

size_t ThisThreadIndex() {
  const size_t index = t_index;
  return index != kNoThreadIndex ? index : FirstCall();
}

}  // namespace fulcrum::internal
