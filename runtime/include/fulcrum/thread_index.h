// ThisThreadIndex(): a small dense number for the calling thread, for per-thread slots in
// shared structures (Snapshot's read cache, ConnectionPool's parked connections).
//
//   Slot& mine = slots[fulcrum::internal::ThisThreadIndex()];   // after checking kNoThreadIndex
//
// A thread gets its index on its first call and gives it back when it exits; the lowest free
// index goes to the next thread, so N threads alive at once hold indices below N however many
// came and went. A thread that calls this while it is exiting (from another thread_local's
// destructor) gets kNoThreadIndex and must take a path without a slot.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <limits>

namespace fulcrum::internal {

inline constexpr size_t kNoThreadIndex = std::numeric_limits<size_t>::max();

size_t ThisThreadIndex();

}  // namespace fulcrum::internal
