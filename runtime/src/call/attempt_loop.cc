#include "call/attempt_loop.h"

#include <algorithm>
#include <sstream>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TTransportException.h>

namespace fulcrum::internal {

namespace {

std::string DescribeFailures(const std::vector<AttemptFailure>& failures) {
  if (failures.empty()) return "no endpoint was tried";
  std::ostringstream out;
  out << "tried ";
  for (size_t i = 0; i < failures.size(); ++i) {
    if (i > 0) out << "; ";
    out << failures[i].address << " (" << StatusCodeName(failures[i].code) << ": "
        << failures[i].detail << ")";
  }
  return out.str();
}

}  // namespace

CallPlan PlanCall(const MethodTraits& method, const CallOptions& options,
                  const ChannelOptions& channel, TimePoint start) {
  CallPlan plan;
  plan.method = &method;
  plan.start = start;
  Duration timeout = channel.default_timeout;
  if (options.timeout) {
    timeout = *options.timeout;
  } else if (method.timeout_ms > 0) {
    timeout = std::chrono::milliseconds(method.timeout_ms);
  }
  plan.deadline = start + timeout;
  if (options.deadline && *options.deadline < plan.deadline) plan.deadline = *options.deadline;
  plan.idempotent = options.idempotent.value_or(method.idempotent) && !method.oneway;
  plan.max_attempts = options.max_attempts > 0 ? options.max_attempts : channel.max_attempts;
  if (options.hash_key) {
    plan.args.has_hash = true;
    plan.args.hash = *options.hash_key;
  }
  Duration hedge = channel.hedge_delay;
  if (options.hedge_delay) {
    hedge = *options.hedge_delay;
  } else if (method.hedge_ms > 0) {
    hedge = std::chrono::milliseconds(method.hedge_ms);
  }
  if (plan.idempotent && plan.max_attempts > 1 && hedge > Duration::zero() &&
      start + hedge < plan.deadline) {
    plan.hedge_delay = hedge;
  }
  return plan;
}

void AttemptLoop::Fail(const CallPlan& plan, StatusCode code, std::string_view what,
                       std::vector<AttemptFailure> failures, int attempts) const {
  std::ostringstream msg;
  msg << "fulcrum: " << env_.service_name << "." << plan.method->name << ": " << what << " after "
      << attempts << (attempts == 1 ? " attempt" : " attempts") << "; "
      << DescribeFailures(failures);
  throw CallError(code, msg.str(), std::move(failures));
}

const Backend* AttemptLoop::LoopHedge::Take() {
  if (taken_) return nullptr;
  taken_ = true;
  // The tried endpoints and the attempt's own are out.
  std::array<EndpointId, 16> excluded{};
  size_t n = std::min(args_.excluded.size(), excluded.size() - 1);
  std::copy_n(args_.excluded.begin(), n, excluded.begin());
  excluded[n++] = IdOf(primary_);
  PickArgs args = args_;
  args.excluded = std::span<const EndpointId>(excluded.data(), n);
  const PickResult pick = picker_.Pick(args);
  if (pick.backend == nullptr || args.IsExcluded(pick.backend)) return nullptr;
  if (!loop_.env_.budget->TryWithdraw()) return nullptr;
  pick.backend->stats->OnStart();
  tracker = pick.tracker;
  return pick.backend;
}

const Backend* AttemptLoop::SettleHedge(const HedgeOutcome& hedge, const CallTracker* tracker,
                                        const CallRecord& record,
                                        std::vector<AttemptFailure>& failures) const {
  const Backend& backend = *hedge.backend;
  if (hedge.lost || (!hedge.connected && hedge.code != StatusCode::kTransport)) {
    // Abandoned when the first endpoint answered, or never sent for a local reason (no free
    // connection at once, the endpoint leaving): nothing learned about the endpoint.
    backend.stats->OnAbandon();
    return nullptr;
  }
  const Duration took = hedge.end - hedge.start;
  backend.stats->OnFinish(hedge.end, took, /*success=*/false);
  if (hedge.connected && tracker != nullptr) tracker->OnFinish(backend, took, false);
  if (record.stats) {
    record.stats->OnAttemptFailure(AttemptFailureKind(hedge.code, hedge.connected, false));
  }
  OnEndpointFailure(backend);
  NoteFailure(failures, backend, hedge.code, hedge.detail, false);
  return &backend;
}

void AttemptLoop::Sleep(Duration d) const {
  if (env_.sleep) {
    env_.sleep(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

bool SortAttemptException(AttemptOutcome& out, bool master_slave) {
  using apache::thrift::TApplicationException;
  using apache::thrift::TException;
  using apache::thrift::protocol::TProtocolException;
  using apache::thrift::transport::TTransportException;
  try {
    throw;
  } catch (const TTransportException& e) {
    out.code = e.getType() == TTransportException::TIMED_OUT ? StatusCode::kDeadlineExceeded
                                                             : StatusCode::kTransport;
    out.detail = e.what();
    return true;
  } catch (const TProtocolException& e) {
    out.code = StatusCode::kProtocol;
    out.detail = e.what();
    return true;
  } catch (const TApplicationException& e) {
    // The server answered, but with a framework error (unknown method, handler crash), or
    // (master-slave) a NotMaster refusal.
    out.code = StatusCode::kApplication;
    out.detail = e.what();
    if (master_slave && e.getType() == kNotMasterExceptionType) {
      out.refusal = ParseNotMaster(out.detail);
    }
    if (!out.refusal) out.rethrow = std::current_exception();
    return false;
  } catch (const TException&) {
    out.rethrow = std::current_exception();  // declared in the IDL: the endpoint did its job
    return false;
  } catch (...) {
    out.rethrow = std::current_exception();  // the caller's own code threw mid-call
    return true;                             // the wire state is unknown
  }
}

ClientMethodStats::AttemptFailure AttemptFailureKind(StatusCode code, bool connected,
                                                     bool refused) {
  if (refused) return ClientMethodStats::kNotMaster;
  switch (code) {
    case StatusCode::kTransport:
      return connected ? ClientMethodStats::kTransport : ClientMethodStats::kConnect;
    case StatusCode::kDeadlineExceeded:
      return ClientMethodStats::kTimeout;
    case StatusCode::kProtocol:
      return ClientMethodStats::kProtocol;
    case StatusCode::kApplication:
      return ClientMethodStats::kApplication;
    default:
      return ClientMethodStats::kLocal;
  }
}

void NoteFailure(std::vector<AttemptFailure>& failures, const Backend& backend, StatusCode code,
                 std::string detail, bool collapse_repeats) {
  if (collapse_repeats && !failures.empty() && failures.back().address == backend.address &&
      failures.back().detail == detail) {
    return;
  }
  failures.push_back({backend.address, code, std::move(detail)});
}

}  // namespace fulcrum::internal
