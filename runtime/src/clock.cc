#include "fulcrum/clock.h"

namespace fulcrum {
namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override {
    return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
  }
};

}  // namespace

const Clock& Clock::Real() {
  // Never destroyed: threads that live until the process exits (the event loop of pipelined
  // connections, the deadline watchdog) read it during static destruction.
  static const SteadyClock* const clock = new SteadyClock;
  return *clock;
}

}  // namespace fulcrum
