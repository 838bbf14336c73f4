// The attempt loop on its own: real balancers over test backends, a scripted AttemptRunner in
// place of pooled connections, a FakeClock. No socket, no thread, no sleep.
#include "call/attempt_loop.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <thrift/TApplicationException.h>

#include "call/endpoint_set_events.h"
#include "call/routes.h"
#include "fulcrum/role.h"
#include "testing/fake_clock.h"

namespace fulcrum::internal {
namespace {

using ::testing::ElementsAre;
using testing::FakeClock;
using ::testing::HasSubstr;

AttemptOutcome Answered() {
  AttemptOutcome out;
  out.connected = true;
  out.sent = true;
  return out;
}

// A request that left, then the connection broke.
AttemptOutcome BrokeAfterSend() {
  AttemptOutcome out = Answered();
  out.code = StatusCode::kTransport;
  out.detail = "connection reset";
  return out;
}

AttemptOutcome ConnectRefused() {
  AttemptOutcome out;
  out.code = StatusCode::kTransport;
  out.detail = "connection refused";
  return out;
}

AttemptOutcome Refused(const NotMaster& redirect) {
  AttemptOutcome out = Answered();
  out.code = StatusCode::kApplication;
  out.detail = FormatNotMaster(redirect);
  out.refusal = redirect;
  out.sent = true;
  return out;
}

// Answers each attempt with the next outcome scripted for its endpoint, or else the next one
// scripted for whichever endpoint comes next (Answered() once both run out). Each attempt takes
// `cost` on the clock, cut at the call's deadline as the channel's watchdog cuts a connection.
// Records where attempts went.
class ScriptedRunner final : public AttemptRunner {
 public:
  ScriptedRunner(FakeClock& clock, Duration cost) : clock_(clock), cost_(cost) {}

  void Script(const std::string& address, std::vector<AttemptOutcome> outcomes) {
    for (AttemptOutcome& o : outcomes) by_address_[address].push_back(std::move(o));
  }
  void ScriptInOrder(std::vector<AttemptOutcome> outcomes) {
    for (AttemptOutcome& o : outcomes) in_order_.push_back(std::move(o));
  }
  AttemptOutcome Run(const Backend& backend, TimePoint deadline) override {
    visited.push_back(backend.address);
    if (clock_.Now() + cost_ > deadline) {
      clock_.Set(deadline);
      AttemptOutcome out = Answered();
      out.code = StatusCode::kDeadlineExceeded;
      out.detail = "deadline exceeded during the call (connection cut)";
      return out;
    }
    clock_.Advance(cost_);
    for (std::deque<AttemptOutcome>* script : {&by_address_[backend.address], &in_order_}) {
      if (script->empty()) continue;
      AttemptOutcome out = std::move(script->front());
      script->pop_front();
      return out;
    }
    return Answered();
  }

  std::vector<std::string> visited;

 private:
  FakeClock& clock_;
  const Duration cost_;
  std::map<std::string, std::deque<AttemptOutcome>> by_address_;
  std::deque<AttemptOutcome> in_order_;
};

// Whether the addresses are all different.
bool Distinct(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return std::adjacent_find(v.begin(), v.end()) == v.end();
}

Endpoint At(uint16_t port) {
  Endpoint e;
  e.host = "10.0.0.1";
  e.port = port;
  return e;
}

class AttemptLoopTest : public ::testing::Test {
 public:
  AttemptLoopTest()
      : budget_(std::make_unique<RetryBudget>(RetryBudgetOptions{}, clock_)), events_(clock_) {
    context_.clock = &clock_;
    context_.random = &rng_;
  }

  // Publishes `endpoints` through a round-robin picker, as the channel would (runners call it
  // to change the set mid-call).
  void SetEndpoints(std::vector<Endpoint> endpoints) {
    backends_.clear();
    for (Endpoint& e : endpoints) backends_.push_back(MakeBackend(std::move(e)));
    if (balancer_ == nullptr) balancer_ = CreateBalancer("round_robin", context_).value();
    picker_.Publish(balancer_->Update(backends_));
    events_.Resolved();
    if (router_ != nullptr) router_->Publish(backends_);
  }

 public:  // runners in the tests below reach the fixture
  AttemptLoop Loop() {
    AttemptLoop::Env env;
    env.clock = &clock_;
    env.budget = budget_.get();
    env.balancer_context = &context_;
    env.service_name = "svc";
    env.on_failure = [this](const Backend& b) { endpoint_failures_.push_back(b.address); };
    env.sleep = [this](Duration d) {
      slept_ += d;
      clock_.Advance(d);
    };
    env.budget_exhausted = &budget_exhausted_;
    return AttemptLoop(std::move(env));
  }

  // Runs one stateless call of `method`; returns the CallError's code (kOk if none).
  StatusCode Call(const MethodTraits& method, AttemptRunner& runner, CallOptions options = {}) {
    StatelessRoute route(picker_, events_);
    const CallPlan plan = PlanCall(method, options, channel_options_, clock_.Now());
    try {
      Loop().Run(plan, route, runner, record_);
    } catch (const CallError& e) {
      error_ = e.what();
      failures_ = e.attempts();
      return e.code();
    }
    return StatusCode::kOk;
  }

  const Backend& BackendAt(size_t i) const { return *backends_[i]; }

  FakeClock clock_;
  SeededRandom rng_{7};
  BalancerContext context_;
  ChannelOptions channel_options_;
  std::unique_ptr<RetryBudget> budget_;
  EndpointSetEvents events_;
  std::unique_ptr<Balancer> balancer_;
  Snapshot<Picker> picker_{EmptyPicker()};
  std::unique_ptr<MasterRouter> router_;
  BackendList backends_;  // the set last published
  std::atomic<uint64_t> budget_exhausted_{0};
  std::vector<std::string> endpoint_failures_;
  Duration slept_{0};
  CallRecord record_;
  std::string error_;
  std::vector<AttemptFailure> failures_;
};

constexpr MethodTraits kIdempotent{.name = "get", .idempotent = true};
constexpr MethodTraits kWrite{.name = "put", .idempotent = false};

TEST_F(AttemptLoopTest, AnIdempotentCallMovesToAnotherEndpointAfterABrokenConnection) {
  SetEndpoints({At(1), At(2), At(3)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  runner.ScriptInOrder({BrokeAfterSend(), BrokeAfterSend()});

  EXPECT_EQ(Call(kIdempotent, runner), StatusCode::kOk);
  ASSERT_EQ(runner.visited.size(), 3u);
  EXPECT_TRUE(Distinct(runner.visited));
  EXPECT_EQ(record_.attempts, 3);
  EXPECT_THAT(endpoint_failures_, ElementsAre(runner.visited[0], runner.visited[1]));
  // Each endpoint's record: the failures counted, nothing left in flight.
  for (const BackendPtr& b : backends_) {
    EXPECT_EQ(b->stats->failures(), b->address == runner.visited[2] ? 0u : 1u);
    EXPECT_EQ(b->stats->in_flight(), 0);
  }
  EXPECT_EQ(slept_, Duration(0));  // an untried endpoint was always there: no backoff
}

TEST_F(AttemptLoopTest, AWriteWhoseRequestLeftIsNotRetried) {
  SetEndpoints({At(1), At(2)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  runner.ScriptInOrder({BrokeAfterSend()});

  EXPECT_EQ(Call(kWrite, runner), StatusCode::kUnavailable);
  ASSERT_EQ(runner.visited.size(), 1u);
  EXPECT_THAT(error_, HasSubstr("svc.put: failed after the request was sent; not idempotent"));
  EXPECT_THAT(error_, HasSubstr(runner.visited[0] + " (TRANSPORT: connection reset)"));
  ASSERT_EQ(failures_.size(), 1u);
}

TEST_F(AttemptLoopTest, AWriteThatNeverLeftIsRetriedElsewhere) {
  SetEndpoints({At(1), At(2)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  runner.ScriptInOrder({ConnectRefused()});

  EXPECT_EQ(Call(kWrite, runner), StatusCode::kOk);
  EXPECT_EQ(runner.visited.size(), 2u);
  EXPECT_TRUE(Distinct(runner.visited));
}

TEST_F(AttemptLoopTest, OnceEveryEndpointWasTriedItBacksOffBeforeTheNextAttempt) {
  SetEndpoints({At(1)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  runner.ScriptInOrder({BrokeAfterSend(), BrokeAfterSend()});

  EXPECT_EQ(Call(kIdempotent, runner), StatusCode::kOk);
  EXPECT_EQ(record_.attempts, 3);
  EXPECT_GT(slept_, Duration(0));
  // Full jitter under the default backoff: at most 2 ms, then 4 ms.
  EXPECT_LE(slept_, std::chrono::milliseconds(6));
}

TEST_F(AttemptLoopTest, MaxAttemptsBoundsTheRetries) {
  SetEndpoints({At(1), At(2), At(3), At(4)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  runner.ScriptInOrder({BrokeAfterSend(), BrokeAfterSend(), BrokeAfterSend()});
  CallOptions options;
  options.max_attempts = 2;

  EXPECT_EQ(Call(kIdempotent, runner, options), StatusCode::kUnavailable);
  EXPECT_EQ(runner.visited.size(), 2u);
  EXPECT_THAT(error_, HasSubstr("all attempts failed after 2 attempts"));
}

TEST_F(AttemptLoopTest, TheDeadlineEndsTheCallRatherThanABackoffPastIt) {
  SetEndpoints({At(1)});
  // Each attempt takes 40 ms of a 100 ms budget: two fit, the third would start too late.
  ScriptedRunner runner(clock_, std::chrono::milliseconds(40));
  runner.ScriptInOrder({BrokeAfterSend(), BrokeAfterSend(), BrokeAfterSend()});
  CallOptions options;
  options.timeout = std::chrono::milliseconds(100);
  options.max_attempts = 10;
  channel_options_.backoff.initial = std::chrono::milliseconds(50);
  channel_options_.backoff.max = std::chrono::milliseconds(50);
  const TimePoint start = clock_.Now();

  EXPECT_EQ(Call(kIdempotent, runner, options), StatusCode::kDeadlineExceeded);
  EXPECT_LE(clock_.Now() - start, std::chrono::milliseconds(100));
  EXPECT_THAT(error_, HasSubstr("deadline exceeded"));
}

TEST_F(AttemptLoopTest, TheRetryBudgetStopsRetriesWhenSpent) {
  SetEndpoints({At(1), At(2), At(3)});
  // A budget that allows no retry at all.
  budget_ =
      std::make_unique<RetryBudget>(RetryBudgetOptions{.ratio = 0, .min_per_second = 0}, clock_);
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  runner.ScriptInOrder({BrokeAfterSend()});

  EXPECT_EQ(Call(kIdempotent, runner), StatusCode::kResourceExhausted);
  EXPECT_EQ(runner.visited.size(), 1u);
  EXPECT_EQ(budget_exhausted_.load(), 1u);
  EXPECT_THAT(error_, HasSubstr("retry budget exhausted"));
}

TEST_F(AttemptLoopTest, ADeclaredExceptionReachesTheCallerAndCountsAsSuccess) {
  SetEndpoints({At(1), At(2)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  AttemptOutcome declared = Answered();
  declared.rethrow = std::make_exception_ptr(apache::thrift::TException("declared"));
  runner.ScriptInOrder({declared});

  EXPECT_THROW(Call(kIdempotent, runner), apache::thrift::TException);
  EXPECT_EQ(runner.visited.size(), 1u);
  for (const BackendPtr& b : backends_) EXPECT_EQ(b->stats->failures(), 0u);
  EXPECT_TRUE(endpoint_failures_.empty());
}

TEST_F(AttemptLoopTest, AFailedNestedCallEndsTheCallAndFreesTheEndpoint) {
  SetEndpoints({At(1), At(2)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  AttemptOutcome nested = Answered();
  nested.nested = std::make_exception_ptr(CallError(StatusCode::kUnavailable, "inner", {}));
  runner.ScriptInOrder({nested});

  EXPECT_EQ(Call(kIdempotent, runner), StatusCode::kUnavailable);
  EXPECT_EQ(error_, "inner");  // the inner call's error, unchanged
  EXPECT_TRUE(record_.nested_failure);
  EXPECT_EQ(runner.visited.size(), 1u);  // not retried: the inner call already was
  for (const BackendPtr& b : backends_) {
    EXPECT_EQ(b->stats->in_flight(), 0);
    EXPECT_EQ(b->stats->failures(), 0u);
  }
}

TEST_F(AttemptLoopTest, AnEndpointThatLeftMidCallIsNotAnAttempt) {
  SetEndpoints({At(1), At(2)});
  // The first endpoint picked leaves the set mid-call: the runner finds its pool closed, and
  // by then the channel has published a set without it.
  class LeavingRunner final : public AttemptRunner {
   public:
    explicit LeavingRunner(AttemptLoopTest& t) : t_(t) {}
    AttemptOutcome Run(const Backend& backend, TimePoint) override {
      visited.push_back(backend.address);
      if (visited.size() == 1) {
        leaving = t_.backends_[0]->address == backend.address ? t_.backends_[0] : t_.backends_[1];
        t_.SetEndpoints({backend.endpoint.port == 1 ? At(2) : At(1)});
        AttemptOutcome out;
        out.code = StatusCode::kResourceExhausted;
        out.detail = "pool shut down";
        return out;
      }
      return Answered();
    }
    std::vector<std::string> visited;
    BackendPtr leaving;

   private:
    AttemptLoopTest& t_;
  } runner(*this);
  StatelessRoute route(picker_, events_);
  const CallPlan plan = PlanCall(kWrite, {}, channel_options_, clock_.Now());

  Loop().Run(plan, route, runner, record_);
  ASSERT_EQ(runner.visited.size(), 2u);
  EXPECT_TRUE(Distinct(runner.visited));
  EXPECT_EQ(record_.attempts, 1);
  EXPECT_EQ(runner.leaving->stats->in_flight(), 0);
  EXPECT_EQ(runner.leaving->stats->failures(), 0u);
}

TEST_F(AttemptLoopTest, NoEndpointSaysWhatDiscoveryReported) {
  events_.DiscoveryFailed("registry 127.0.0.1:1 unreachable");
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));

  EXPECT_EQ(Call(kIdempotent, runner), StatusCode::kUnavailable);
  EXPECT_THAT(error_, HasSubstr("no endpoint available (discovery failed: registry"));
  EXPECT_THAT(error_, HasSubstr("after 0 attempts; no endpoint was tried"));
}

// A runner that races hedges as a test script says: `race(primary, offer)` returns the
// outcome, taking the offer (or not) as it likes.
class HedgingRunner final : public AttemptRunner {
 public:
  using Race = std::function<AttemptOutcome(const Backend& primary, HedgeOffer* offer)>;
  explicit HedgingRunner(Race race) : race_(std::move(race)) {}

  AttemptOutcome Run(const Backend& backend, TimePoint) override {
    visited.push_back(backend.address);
    return race_(backend, nullptr);
  }
  AttemptOutcome RunHedged(const Backend& backend, TimePoint, HedgeOffer& offer) override {
    visited.push_back(backend.address);
    offers.push_back(offer.at());
    return race_(backend, &offer);
  }

  std::vector<std::string> visited;  // the first endpoint of each attempt
  std::vector<TimePoint> offers;     // when each offered hedge was due

 private:
  Race race_;
};

constexpr MethodTraits kHedged{.name = "get", .idempotent = true, .hedge_ms = 5};

TEST_F(AttemptLoopTest, AHedgeThatAnswersFirstIsTheCallsAnswer) {
  SetEndpoints({At(1), At(2), At(3)});
  const TimePoint start = clock_.Now();
  const Backend* hedge = nullptr;
  HedgingRunner runner([&](const Backend& primary, HedgeOffer* offer) {
    EXPECT_NE(offer, nullptr);
    if (offer == nullptr) return Answered();
    clock_.Advance(std::chrono::milliseconds(5));
    hedge = offer->Take();
    EXPECT_NE(hedge, nullptr);
    if (hedge == nullptr) return Answered();
    EXPECT_NE(hedge, &primary);               // another endpoint
    EXPECT_EQ(hedge->stats->in_flight(), 1);  // counted while it runs
    EXPECT_EQ(offer->Take(), nullptr);        // once
    clock_.Advance(std::chrono::milliseconds(1));
    AttemptOutcome out = Answered();
    out.hedge.backend = hedge;
    out.hedge.start = start + std::chrono::milliseconds(5);
    out.hedge.end = clock_.Now();
    out.hedge.connected = true;
    out.hedge.won = true;
    return out;
  });
  const double budget_before = budget_->Available();

  EXPECT_EQ(Call(kHedged, runner), StatusCode::kOk);
  ASSERT_EQ(runner.offers.size(), 1u);
  EXPECT_EQ(runner.offers[0], start + std::chrono::milliseconds(5));  // the method's hedge_ms
  EXPECT_EQ(record_.attempts, 2);
  EXPECT_EQ(record_.end, start + std::chrono::milliseconds(6));
  // The call deposited 0.2 of a token and the hedge took one.
  EXPECT_NEAR(budget_->Available(), budget_before + 0.2 - 1, 1e-9);
  ASSERT_NE(hedge, nullptr);
  for (const BackendPtr& b : backends_) {
    EXPECT_EQ(b->stats->in_flight(), 0) << b->address;
    EXPECT_EQ(b->stats->failures(), 0u) << b->address;
    const bool used = b->address == runner.visited[0] || b.get() == hedge;
    EXPECT_EQ(b->stats->calls(), used ? 1u : 0u) << b->address;
  }
  // The hedge's latency is its own; the abandoned first endpoint is recorded as at least as
  // slow as the call took.
  EXPECT_EQ(hedge->stats->ewma_ns(), 1e6);
  for (const BackendPtr& b : backends_) {
    if (b->address == runner.visited[0]) {
      EXPECT_EQ(b->stats->ewma_ns(), 6e6);
    }
  }
  EXPECT_TRUE(endpoint_failures_.empty());
}

TEST_F(AttemptLoopTest, AHedgeThatLosesIsAbandonedWithoutBlame) {
  SetEndpoints({At(1), At(2)});
  const Backend* hedge = nullptr;
  HedgingRunner runner([&](const Backend&, HedgeOffer* offer) {
    hedge = offer->Take();
    AttemptOutcome out = Answered();
    out.hedge.backend = hedge;
    out.hedge.connected = true;
    out.hedge.lost = true;
    return out;
  });

  EXPECT_EQ(Call(kHedged, runner), StatusCode::kOk);
  ASSERT_NE(hedge, nullptr);
  EXPECT_EQ(record_.attempts, 2);
  EXPECT_EQ(hedge->stats->in_flight(), 0);
  EXPECT_EQ(hedge->stats->calls(), 0u);  // abandoned: no latency, no failure
  EXPECT_TRUE(endpoint_failures_.empty());
}

TEST_F(AttemptLoopTest, WhenTheHedgeAndTheFirstAttemptBothFailTheRetryGoesToAThirdEndpoint) {
  SetEndpoints({At(1), At(2), At(3)});
  std::vector<std::string> hedged;
  HedgingRunner runner([&](const Backend&, HedgeOffer* offer) {
    if (offer == nullptr || !hedged.empty()) return Answered();
    const Backend* hedge = offer->Take();
    if (hedge == nullptr) return Answered();
    hedged.push_back(hedge->address);
    AttemptOutcome out = BrokeAfterSend();
    out.hedge.backend = hedge;
    out.hedge.connected = true;
    out.hedge.code = StatusCode::kTransport;
    out.hedge.detail = "hedge reset";
    return out;
  });

  EXPECT_EQ(Call(kHedged, runner), StatusCode::kOk);
  ASSERT_EQ(hedged.size(), 1u);
  ASSERT_EQ(runner.visited.size(), 2u);
  // The third endpoint: neither the first attempt's nor the hedge's.
  EXPECT_TRUE(Distinct({runner.visited[0], runner.visited[1], hedged[0]}));
  EXPECT_EQ(record_.attempts, 3);
  EXPECT_THAT(endpoint_failures_, ::testing::UnorderedElementsAre(runner.visited[0], hedged[0]));
}

TEST_F(AttemptLoopTest, NoHedgeWithoutBudgetOrAnotherEndpoint) {
  budget_ =
      std::make_unique<RetryBudget>(RetryBudgetOptions{.ratio = 0, .min_per_second = 0}, clock_);
  SetEndpoints({At(1), At(2)});
  int taken = 0;
  HedgingRunner runner([&](const Backend&, HedgeOffer* offer) {
    if (offer != nullptr && offer->Take() != nullptr) ++taken;
    return Answered();
  });
  EXPECT_EQ(Call(kHedged, runner), StatusCode::kOk);
  EXPECT_EQ(runner.offers.size(), 1u);
  EXPECT_EQ(taken, 0);  // the budget is empty

  budget_ = std::make_unique<RetryBudget>(RetryBudgetOptions{}, clock_);
  SetEndpoints({At(1)});
  EXPECT_EQ(Call(kHedged, runner), StatusCode::kOk);
  EXPECT_EQ(taken, 0);  // nowhere else to go
  for (const BackendPtr& b : backends_) EXPECT_EQ(b->stats->in_flight(), 0);
}

TEST_F(AttemptLoopTest, PlanCallHedgesOnlyIdempotentCallsWithASecondAttempt) {
  const TimePoint now = clock_.Now();
  using std::chrono::milliseconds;
  channel_options_.hedge_delay = milliseconds(20);
  constexpr MethodTraits kPlain{.name = "get", .idempotent = true};
  // The call's own, else the method's, else the channel's.
  EXPECT_EQ(PlanCall(kPlain, {}, channel_options_, now).hedge_delay, milliseconds(20));
  EXPECT_EQ(PlanCall(kHedged, {}, channel_options_, now).hedge_delay, milliseconds(5));
  CallOptions own;
  own.hedge_delay = milliseconds(7);
  EXPECT_EQ(PlanCall(kHedged, own, channel_options_, now).hedge_delay, milliseconds(7));
  own.hedge_delay = Duration::zero();  // this call: no hedge
  EXPECT_EQ(PlanCall(kHedged, own, channel_options_, now).hedge_delay, Duration::zero());
  // Never a write, a oneway call, a call allowed one attempt, or a hedge not before the deadline.
  EXPECT_EQ(PlanCall(kWrite, {}, channel_options_, now).hedge_delay, Duration::zero());
  constexpr MethodTraits kOneway{.name = "note", .idempotent = true, .oneway = true};
  EXPECT_EQ(PlanCall(kOneway, {}, channel_options_, now).hedge_delay, Duration::zero());
  CallOptions once;
  once.max_attempts = 1;
  EXPECT_EQ(PlanCall(kHedged, once, channel_options_, now).hedge_delay, Duration::zero());
  CallOptions short_call;
  short_call.timeout = milliseconds(20);
  EXPECT_EQ(PlanCall(kPlain, short_call, channel_options_, now).hedge_delay, Duration::zero());
}

TEST_F(AttemptLoopTest, PlanCallTakesTheEarliestDeadlineAndNeverRetriesOneway) {
  constexpr MethodTraits kSlow{.name = "slow", .idempotent = true, .timeout_ms = 5000};
  constexpr MethodTraits kOneway{.name = "note", .idempotent = true, .oneway = true};
  const TimePoint now = clock_.Now();
  EXPECT_EQ(PlanCall(kSlow, {}, channel_options_, now).deadline, now + std::chrono::seconds(5));
  CallOptions options;
  options.timeout = std::chrono::milliseconds(20);
  EXPECT_EQ(PlanCall(kSlow, options, channel_options_, now).deadline,
            now + std::chrono::milliseconds(20));
  options.deadline = now + std::chrono::milliseconds(3);
  EXPECT_EQ(PlanCall(kSlow, options, channel_options_, now).deadline,
            now + std::chrono::milliseconds(3));
  EXPECT_FALSE(PlanCall(kOneway, {}, channel_options_, now).idempotent);
  options.idempotent = false;
  EXPECT_FALSE(PlanCall(kSlow, options, channel_options_, now).idempotent);
}

// Master-slave routes: the same loop with MasterSlaveRoute.
class MasterSlaveLoopTest : public AttemptLoopTest {
 public:
  MasterSlaveLoopTest() {
    router_ = std::make_unique<MasterRouter>(CreateBalancer("round_robin", context_).value(),
                                             /*read_from_slaves=*/false, picker_, events_);
  }

  static Endpoint Member(uint16_t port, InstanceRole role, int64_t epoch) {
    Endpoint e = At(port);
    e.group = "g";
    e.role = role;
    e.epoch = epoch;
    return e;
  }

 protected:
  StatusCode WriteCall(ScriptedRunner& runner, CallOptions options = {}) {
    MasterSlaveRoute route(*router_, kWrite);
    const CallPlan plan = PlanCall(kWrite, options, channel_options_, clock_.Now());
    try {
      Loop().Run(plan, route, runner, record_);
    } catch (const CallError& e) {
      error_ = e.what();
      return e.code();
    }
    return StatusCode::kOk;
  }
};

TEST_F(MasterSlaveLoopTest, AWriteGoesToTheMasterAndFollowsARedirectToANewerOne) {
  SetEndpoints({Member(1, InstanceRole::kSlave, 3), Member(2, InstanceRole::kMaster, 3),
                Member(3, InstanceRole::kSlave, 3)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(1));
  // :2 has lost its lease; :3 won epoch 4, which the watch has not delivered yet.
  runner.Script("10.0.0.1:2", {Refused({"10.0.0.1:3", 4})});
  CallOptions options;
  options.max_attempts = 1;  // a refusal is not an attempt that failed

  EXPECT_EQ(WriteCall(runner, options), StatusCode::kOk);
  EXPECT_THAT(runner.visited, ElementsAre("10.0.0.1:2", "10.0.0.1:3"));
  EXPECT_EQ(router_->redirects(), 1u);
  EXPECT_EQ(BackendAt(1).stats->failures(), 0u);  // refusing is the endpoint working
  EXPECT_TRUE(endpoint_failures_.empty());
}

TEST_F(MasterSlaveLoopTest, AStaleRedirectIsNotFollowed) {
  SetEndpoints({Member(1, InstanceRole::kSlave, 5), Member(2, InstanceRole::kMaster, 5)});
  ScriptedRunner runner(clock_, std::chrono::milliseconds(10));
  // :2 refuses, naming :1 at an epoch older than the one the watch delivered: the call keeps
  // waiting for a newer set instead of going there, until its deadline.
  std::vector<AttemptOutcome> refusals;
  for (int i = 0; i < 20; ++i) refusals.push_back(Refused({"10.0.0.1:1", 4}));
  runner.Script("10.0.0.1:2", std::move(refusals));
  CallOptions options;
  options.timeout = std::chrono::milliseconds(50);

  EXPECT_EQ(WriteCall(runner, options), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(runner.visited, ::testing::Each(std::string("10.0.0.1:2")));
  EXPECT_THAT(error_, HasSubstr("deadline exceeded waiting for a master"));
  EXPECT_EQ(router_->redirects(), 0u);
  EXPECT_GE(router_->waits(), 1u);
}

TEST_F(MasterSlaveLoopTest, AnUnreachableMasterMakesTheWriteWaitForTheNextOne) {
  SetEndpoints({Member(1, InstanceRole::kSlave, 1), Member(2, InstanceRole::kMaster, 1)});
  class FailoverRunner final : public AttemptRunner {
   public:
    explicit FailoverRunner(MasterSlaveLoopTest& t) : t_(t) {}
    AttemptOutcome Run(const Backend& backend, TimePoint) override {
      visited.push_back(backend.address);
      if (backend.address == "10.0.0.1:2") {
        // The master died; the registry promotes :1 (as the watch would deliver it).
        t_.SetEndpoints({Member(1, InstanceRole::kMaster, 2), Member(2, InstanceRole::kSlave, 1)});
        return ConnectRefused();
      }
      return Answered();
    }
    std::vector<std::string> visited;

   private:
    MasterSlaveLoopTest& t_;
  } runner(*this);
  MasterSlaveRoute route(*router_, kWrite);
  CallOptions options;
  options.max_attempts = 1;
  const CallPlan plan = PlanCall(kWrite, options, channel_options_, clock_.Now());

  Loop().Run(plan, route, runner, record_);
  EXPECT_THAT(runner.visited, ElementsAre("10.0.0.1:2", "10.0.0.1:1"));
}

// A clock that moves 1 ms every time it is read.
class TickingClock final : public Clock {
 public:
  TimePoint Now() const override {
    return FromNanos(now_ns_.fetch_add(1'000'000, std::memory_order_relaxed));
  }

 private:
  mutable std::atomic<int64_t> now_ns_{1'000'000'000};
};

// Whatever instant the deadline falls at, a write whose only master is unreachable says it ran
// out of time waiting for a reachable master, also when the deadline passes between the wait
// and the next attempt.
TEST(MasterSlaveLoopDeadlineTest, AnUnreachableMasterIsNamedWheneverTheDeadlinePasses) {
  TickingClock clock;
  SeededRandom rng(3);
  BalancerContext context;
  context.clock = &clock;
  context.random = &rng;
  RetryBudget budget(RetryBudgetOptions{}, clock);
  EndpointSetEvents events(clock);
  Snapshot<Picker> everyone(EmptyPicker());
  MasterRouter router(CreateBalancer("round_robin", context).value(), false, everyone, events);
  Endpoint master = At(1);
  master.group = "g";
  master.role = InstanceRole::kMaster;
  master.epoch = 1;
  const BackendList backends = {MakeBackend(master)};
  everyone.Publish(CreateBalancer("round_robin", context).value()->Update(backends));
  router.Publish(backends);
  AttemptLoop::Env env;
  env.clock = &clock;
  env.budget = &budget;
  env.balancer_context = &context;
  env.service_name = "svc";
  const AttemptLoop loop(env);
  class Unreachable final : public AttemptRunner {
   public:
    AttemptOutcome Run(const Backend&, TimePoint) override { return ConnectRefused(); }
  } runner;

  for (int timeout_ms = 2; timeout_ms <= 30; ++timeout_ms) {
    SCOPED_TRACE("timeout " + std::to_string(timeout_ms) + " ms");
    CallOptions options;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    const CallPlan plan = PlanCall(kWrite, options, ChannelOptions{}, clock.Now());
    MasterSlaveRoute route(router, kWrite);
    CallRecord record;
    try {
      loop.Run(plan, route, runner, record);
      ADD_FAILURE() << "an unreachable master answered";
    } catch (const CallError& e) {
      EXPECT_EQ(e.code(), StatusCode::kDeadlineExceeded);
      EXPECT_THAT(e.what(), HasSubstr("deadline exceeded waiting for a reachable master"));
      EXPECT_THAT(e.what(), HasSubstr("10.0.0.1:1 (TRANSPORT: connection refused)"));
    }
  }
}

}  // namespace
}  // namespace fulcrum::internal
