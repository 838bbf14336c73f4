// The attempt loop: one call's picks, attempts and retries, apart from sockets.
//
//   CallPlan plan = PlanCall(method, options, channel_options, clock.Now());
//   StatelessRoute route(picker_snapshot, events);
//   AttemptLoop(env).Run(plan, route, runner, record);   // returns, or throws CallError
//
// The loop asks the route (routes.h) for a picker, picks an endpoint, hands it to an
// AttemptRunner, and decides from what the attempt came to: done; retry on another endpoint
// (the request never left, or the method is idempotent; never past the deadline, max_attempts
// or the retry budget; after a backoff when every endpoint was tried); follow a NotMaster
// redirect or wait for a new master (master-slave routes only); or fail with a CallError that
// lists every attempt. It also feeds what it saw back to each endpoint's stats, the picker's
// tracker and the call's metrics.
//
// The AttemptRunner is the seam between policy and transport: the channel's runs the attempt
// on a pooled Thrift connection; tests script outcomes and drive the loop on a FakeClock.
//
// Hedging (CallPlan::hedge_delay): the loop offers the runner a second endpoint (HedgeOffer);
// a runner that can race two attempts takes it once the first has been unanswered for the
// delay, and reports which answered first (AttemptOutcome::hedge). The loop does the
// bookkeeping: the budget token, both endpoints' stats, the failure list.
#pragma once

#include <array>
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "call/routes.h"
#include "fulcrum/balancer.h"
#include "fulcrum/channel.h"
#include "fulcrum/retry.h"
#include "fulcrum/role.h"
#include "metrics/client_metrics.h"

namespace fulcrum::internal {

// What a call is allowed: its deadline, whether it may be retried after its request left, how
// many attempts, where consistent hashing routes it.
struct CallPlan {
  const MethodTraits* method = nullptr;
  TimePoint start{};
  TimePoint deadline{};
  bool idempotent = false;
  int max_attempts = 1;
  PickArgs args;  // the hash key; `excluded` is the loop's
  // Idempotent two-way calls: start a hedge when the request has been unanswered this long.
  // Zero: none.
  Duration hedge_delay = Duration::zero();
};

// The call's timeout is the call's own, else the method's, else the channel's default; an
// absolute deadline in `options` wins when earlier. Oneway methods are never idempotent.
CallPlan PlanCall(const MethodTraits& method, const CallOptions& options,
                  const ChannelOptions& channel, TimePoint start);

// What a hedge came to (AttemptOutcome::hedge).
struct HedgeOutcome {
  const Backend* backend = nullptr;  // null: no hedge was started
  TimePoint start{};
  TimePoint end{};
  // The hedge answered first (a result, a declared or application exception, a nested call's
  // failure): the attempt's outcome is the hedge's, and the first endpoint's request was
  // abandoned (its reply is dropped, never read).
  bool won = false;
  // The first endpoint answered first: the hedge was abandoned (its reply is dropped, never read).
  bool lost = false;
  // Otherwise the hedge failed on its own, and the first endpoint's outcome is the attempt's.
  bool connected = false;
  StatusCode code = StatusCode::kOk;
  std::string detail;
};

// What one attempt on one endpoint came to.
struct AttemptOutcome {
  // kOk: the endpoint answered (a result, or a declared exception in `rethrow`).
  StatusCode code = StatusCode::kOk;
  std::string detail;
  // A connection was leased, so the request may have left. False: connecting failed (code
  // kTransport), the pool was full until the deadline, or it was shut down (kResourceExhausted:
  // the endpoint left the set).
  bool connected = false;
  bool sent = false;  // the request fully left (CallPhase::MarkSent)
  // Master-slave: the instance refused with a NotMaster redirect; the call never ran there.
  std::optional<NotMaster> refusal;
  // With code kOk: a declared exception for the caller. With kApplication: Thrift's own error
  // (unknown method, handler crash), for the caller too.
  std::exception_ptr rethrow;
  // A Fulcrum call made inside the attempt failed: the whole call ends with it.
  std::exception_ptr nested;
  HedgeOutcome hedge;
};

// A second endpoint for one attempt's hedge, offered by the loop.
class HedgeOffer {
 public:
  // Start the hedge if no reply has come by then.
  virtual TimePoint at() const = 0;
  // Another endpoint, with its in-flight count raised and a retry budget token spent; null
  // when there is none or the budget refuses. At most once per offer.
  virtual const Backend* Take() = 0;

 protected:
  ~HedgeOffer() = default;
};

class AttemptRunner {
 public:
  virtual ~AttemptRunner() = default;
  // Runs the call once on `backend`, within `deadline`.
  virtual AttemptOutcome Run(const Backend& backend, TimePoint deadline) = 0;
  // The same with a hedge offered; a runner that cannot race two attempts runs the one.
  virtual AttemptOutcome RunHedged(const Backend& backend, TimePoint deadline, HedgeOffer&) {
    return Run(backend, deadline);
  }
};

// What the loop tells its caller for the call's metrics.
struct CallRecord {
  ClientMethodStats* stats = nullptr;  // null: metrics off
  int attempts = 0;                    // attempts made on an endpoint, hedges included
  bool nested_failure = false;         // a Fulcrum call made inside the attempt failed
  TimePoint end{};                     // when the successful attempt ended (the epoch if none did)
};

// A call whose first attempt ran outside the loop (an asynchronous call's, on a pipelined
// connection): the loop takes it from what that attempt came to. The budget's OnCall() and
// the endpoint's OnStart() were done when the attempt started.
struct Resumed {
  std::shared_ptr<const Picker> picker;  // the one `pick` came from
  PickResult pick;
  AttemptOutcome outcome;
};

class AttemptLoop {
 public:
  // What the loop needs from its channel; fixed for the channel's life.
  struct Env {
    const Clock* clock = &Clock::Real();
    RetryBudget* budget = nullptr;
    BackoffOptions backoff;
    const BalancerContext* balancer_context = nullptr;  // its rng jitters the backoff
    std::string_view service_name;
    // After a failed attempt that is the endpoint's fault (outlier detection). Optional.
    std::function<void(const Backend&)> on_failure;
    // Sleeps a backoff; tests advance a FakeClock instead. Null: the thread sleeps.
    std::function<void(Duration)> sleep;
    std::atomic<uint64_t>* budget_exhausted = nullptr;  // optional
  };

  explicit AttemptLoop(Env env) : env_(std::move(env)) {}

  // Returns when an attempt succeeded; rethrows a declared or Thrift application exception the
  // endpoint answered with, or a nested call's CallError; otherwise throws CallError.
  template <class Route>
  void Run(const CallPlan& plan, Route& route, AttemptRunner& runner, CallRecord& record,
           Resumed* resumed = nullptr) const;

 private:
  [[noreturn]] void Fail(const CallPlan& plan, StatusCode code, std::string_view what,
                         std::vector<AttemptFailure> failures, int attempts) const;
  void Sleep(Duration d) const;
  void OnEndpointFailure(const Backend& backend) const {
    if (env_.on_failure) env_.on_failure(backend);
  }
  class LoopHedge;
  // Records a hedge that did not win. Returns its backend when it failed there (for the
  // tried list), else null.
  const Backend* SettleHedge(const HedgeOutcome& hedge, const CallTracker* tracker,
                             const CallRecord& record, std::vector<AttemptFailure>& failures) const;

  const Env env_;
};

// Sorts the exception being handled (call it inside a catch block) into `out`, as an attempt
// that ended with it came to: a transport, protocol or Thrift application error, a NotMaster
// refusal (master-slave), a declared exception for the caller. True when the connection it
// came from cannot be reused.
bool SortAttemptException(AttemptOutcome& out, bool master_slave);

// How metrics name a failed attempt. `connected`: a connection was leased (the request may
// have left).
ClientMethodStats::AttemptFailure AttemptFailureKind(StatusCode code, bool connected, bool refused);

// Records one failed attempt for the error message; a refusal repeated by the same instance
// while the call waits is listed once.
void NoteFailure(std::vector<AttemptFailure>& failures, const Backend& backend, StatusCode code,
                 std::string detail, bool collapse_repeats);

// The hedge the loop offers with an attempt: an endpoint neither tried nor the attempt's own,
// if the budget allows.
class AttemptLoop::LoopHedge final : public HedgeOffer {
 public:
  LoopHedge(const AttemptLoop& loop, const Picker& picker, const PickArgs& args,
            const Backend& primary, TimePoint at)
      : loop_(loop), picker_(picker), args_(args), primary_(primary), at_(at) {}

  TimePoint at() const override { return at_; }
  const Backend* Take() override;

  const CallTracker* tracker = nullptr;  // the hedge's pick's

 private:
  const AttemptLoop& loop_;
  const Picker& picker_;
  const PickArgs& args_;
  const Backend& primary_;
  const TimePoint at_;
  bool taken_ = false;
};

template <class Route>
void AttemptLoop::Run(const CallPlan& plan, Route& route, AttemptRunner& runner, CallRecord& record,
                      Resumed* resumed) const {
  // Tried backends are remembered in a fixed array: retries beyond this many are rare enough
  // to not deserve an allocation, and a longer exclusion list buys nothing.
  constexpr size_t kMaxTracked = 8;
  const Clock& clock = *env_.clock;
  if (resumed == nullptr) env_.budget->OnCall();
  std::shared_ptr<const Picker> picker =
      resumed != nullptr ? std::move(resumed->picker) : route.Current();
  int refusals = 0;  // refusals and master waits: not counted against max_attempts, no budget
  std::array<EndpointId, kMaxTracked> tried{};
  size_t n_tried = 0;
  std::vector<AttemptFailure> failures;  // allocated only when something fails
  bool first_pick = true;
  PickArgs args = plan.args;
  // What a deadline that passes before the next attempt is reported as: plain, or the wait
  // for a master that used the time up.
  const char* expired = "deadline exceeded";

  for (int attempt = 1;; ++attempt) {
    args.excluded = std::span<const EndpointId>(tried.data(), n_tried);
    const PickResult pick = resumed != nullptr ? resumed->pick : picker->Pick(args);
    if (pick.backend == nullptr) {
      RouteStep step = route.OnNoEndpoint(attempt, plan.deadline);
      if (step.picker == nullptr) {
        Fail(plan, step.code, step.why, std::move(failures), attempt - 1);
      }
      picker = std::move(step.picker);
      --attempt;
      continue;
    }
    // Valid while `picker` holds it: the picker is replaced only as the iteration ends.
    const Backend& backend = *pick.backend;
    TimePoint now = first_pick ? plan.start : clock.Now();  // one clock read saved per call
    first_pick = false;
    if (attempt > 1 && args.IsExcluded(&backend)) {
      // Nothing untried is left: back off before hitting the same endpoint again.
      const Duration pause = Backoff(env_.backoff, attempt - 1, env_.balancer_context->rng());
      if (now + pause >= plan.deadline) {
        Fail(plan, StatusCode::kDeadlineExceeded, expired, std::move(failures), attempt - 1);
      }
      Sleep(pause);
      now = clock.Now();
    }
    if (now >= plan.deadline) {
      Fail(plan, StatusCode::kDeadlineExceeded, expired, std::move(failures), attempt - 1);
    }

    const CallTracker* hedge_tracker = nullptr;
    // Initialised in place (no move of the outcome on the common path).
    AttemptOutcome out = [&] {
      if (resumed != nullptr) return std::move(std::exchange(resumed, nullptr)->outcome);
      backend.stats->OnStart();
      if constexpr (!Route::kMasterSlave) {
        if (plan.hedge_delay > Duration::zero() && attempt < plan.max_attempts) {
          LoopHedge offer(*this, *picker, args, backend, now + plan.hedge_delay);
          AttemptOutcome hedged_out = runner.RunHedged(backend, plan.deadline, offer);
          hedge_tracker = offer.tracker;
          return hedged_out;
        }
      }
      return runner.Run(backend, plan.deadline);
    }();
    const Backend* hedged = nullptr;  // a hedge that failed, for the tried list
    if (out.hedge.backend != nullptr) {
      ++record.attempts;  // the hedge's
      if (record.stats) record.stats->OnHedge(out.hedge.won);
      if (out.hedge.won) {
        // The first endpoint was abandoned: not a failure, but it took at least this long.
        const TimePoint end = out.hedge.end;
        backend.stats->OnOutrun(end, end - now);
        const Backend& winner = *out.hedge.backend;
        const bool answered = !out.nested && out.code == StatusCode::kOk;
        if (out.nested) {
          winner.stats->OnAbandon();
          record.nested_failure = true;
          std::rethrow_exception(out.nested);
        }
        const Duration took = end - out.hedge.start;
        winner.stats->OnFinish(end, took, answered);
        if (hedge_tracker != nullptr) hedge_tracker->OnFinish(winner, took, answered);
        ++record.attempts;  // the first endpoint's
        if (!answered) {
          if (record.stats) record.stats->OnAttemptFailure(ClientMethodStats::kApplication);
          OnEndpointFailure(winner);
        }
        record.end = end;
        if (out.rethrow) std::rethrow_exception(out.rethrow);
        return;
      }
      hedged = SettleHedge(out.hedge, hedge_tracker, record, failures);
    }
    if (out.nested) {
      // Not this endpoint's fault: its in-flight count is given back.
      backend.stats->OnAbandon();
      record.nested_failure = true;
      std::rethrow_exception(out.nested);
    }
    if (!out.connected && out.code == StatusCode::kResourceExhausted) {
      // The endpoint left the set after this call read its picker: pick again from the
      // current one. Not an attempt (nothing was tried) and not a retry (no budget spent).
      // Pools are shut down only after a newer picker is published, so there is one.
      std::shared_ptr<const Picker> fresh = route.Current();
      if (fresh != picker) {
        backend.stats->OnAbandon();
        picker = std::move(fresh);
        --attempt;
        continue;
      }
    }
    ++record.attempts;
    const StatusCode code = out.code;
    if (!out.connected) {
      // Nothing left this client: safe to retry anywhere. Only a failed connect is the
      // endpoint's fault; an exhausted or closed local pool is not.
      if (record.stats) record.stats->OnAttemptFailure(AttemptFailureKind(code, false, false));
      if (code == StatusCode::kTransport) {
        const TimePoint end = clock.Now();
        backend.stats->OnFinish(end, end - now, /*success=*/false);
      } else {
        backend.stats->OnAbandon();
      }
    } else {
      const TimePoint end = clock.Now();
      const bool success = code == StatusCode::kOk;
      const bool refused = Route::kMasterSlave && out.refusal.has_value();
      // A refusal is the endpoint working as it should.
      backend.stats->OnFinish(end, end - now, success || refused);
      if (pick.tracker != nullptr) pick.tracker->OnFinish(backend, end - now, success || refused);
      if (!success && record.stats) {
        record.stats->OnAttemptFailure(AttemptFailureKind(code, true, refused));
      }
      if (success) {
        record.end = end;  // spares the metrics a clock read
        if (out.rethrow) std::rethrow_exception(out.rethrow);
        return;
      }
      if constexpr (Route::kMasterSlave) {
        if (refused) {
          // The endpoint is healthy and the call never ran there: whatever the method, send
          // it again, to the master named if it is new enough and known, else after a wait.
          ++refusals;
          NoteFailure(failures, backend, StatusCode::kUnavailable, std::move(out.detail),
                      /*collapse_repeats=*/true);
          RouteStep step = route.OnRefusal(backend, *out.refusal, plan.deadline);
          if (step.picker == nullptr) {
            Fail(plan, step.code, step.why, std::move(failures), attempt);
          }
          if (step.deadline_message != nullptr) expired = step.deadline_message;
          picker = std::move(step.picker);
          continue;
        }
      }
      if (code == StatusCode::kApplication) {
        OnEndpointFailure(backend);
        std::rethrow_exception(out.rethrow);  // Thrift's own error reaches the caller unchanged
      }
    }

    if (code != StatusCode::kResourceExhausted) OnEndpointFailure(backend);
    if (out.sent && !plan.idempotent) {
      NoteFailure(failures, backend, code, std::move(out.detail), false);
      Fail(plan, code == StatusCode::kDeadlineExceeded ? code : StatusCode::kUnavailable,
           plan.method->oneway ? "failed after the oneway request was sent (not retried)"
                               : "failed after the request was sent; not idempotent, not retried",
           std::move(failures), attempt);
    }
    if constexpr (Route::kMasterSlave) {
      if (route.WaitsForNewMaster(backend, code)) {
        // A failover is probably under way. Wait for a newer master within the deadline
        // instead of spending attempts and budget on a dead address. Safe: the request never
        // left, or the method is idempotent.
        ++refusals;
        NoteFailure(failures, backend, code, std::move(out.detail), /*collapse_repeats=*/true);
        RouteStep step = route.AfterMasterLost(plan.deadline);
        if (step.picker == nullptr) Fail(plan, step.code, step.why, std::move(failures), attempt);
        expired = step.deadline_message;
        picker = std::move(step.picker);
        continue;
      }
    }
    NoteFailure(failures, backend, code, std::move(out.detail), false);
    expired = "deadline exceeded";
    if (n_tried < kMaxTracked && !args.IsExcluded(&backend)) tried[n_tried++] = IdOf(backend);
    if (hedged != nullptr && n_tried < kMaxTracked && !args.IsExcluded(hedged)) {
      tried[n_tried++] = IdOf(*hedged);
    }

    if (clock.Now() >= plan.deadline) {
      Fail(plan, StatusCode::kDeadlineExceeded, "deadline exceeded", std::move(failures), attempt);
    }
    if (attempt - refusals >= plan.max_attempts) {
      Fail(plan, StatusCode::kUnavailable, "all attempts failed", std::move(failures), attempt);
    }
    if (!env_.budget->TryWithdraw()) {
      if (env_.budget_exhausted) env_.budget_exhausted->fetch_add(1, std::memory_order_relaxed);
      Fail(plan, StatusCode::kResourceExhausted, "retry budget exhausted", std::move(failures),
           attempt);
    }
    picker = route.Current();  // an ejection may have published a new one
  }
}

}  // namespace fulcrum::internal
