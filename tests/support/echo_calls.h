// Hand-written balanced calls to the Echo test service: what fulcrum-gen generates for an IDL,
// written out for the runtime's own tests and benchmarks (which must not depend on the code
// generator).
//
//   std::string who = fulcrum::testing::Whoami(*channel);
//
// Thread-safe as Channel is.
#pragma once

#include <string>

#include "Echo.h"
#include "fulcrum/channel.h"

namespace fulcrum::testing {

inline constexpr MethodTraits kEchoMethod{.name = "echo", .idempotent = true};
inline constexpr MethodTraits kWhoamiMethod{.name = "whoami", .idempotent = true};
inline constexpr MethodTraits kSlowMethod{.name = "slow", .idempotent = true};
inline constexpr MethodTraits kFailMethod{.name = "fail", .idempotent = true};
inline constexpr MethodTraits kIncrementMethod{.name = "increment"};  // not idempotent
inline constexpr MethodTraits kNotifyMethod{.name = "notify", .oneway = true};

using fulcrum::test::EchoClient;

inline std::string Echo(Channel& ch, const std::string& message, const CallOptions& o = {}) {
  return ch.Call<EchoClient>(kEchoMethod, o, [&](EchoClient& c, CallPhase& p) {
    std::string out;
    c.send_echo(message);
    p.MarkSent();
    c.recv_echo(out);
    return out;
  });
}

inline std::string Whoami(Channel& ch, const CallOptions& o = {}) {
  return ch.Call<EchoClient>(kWhoamiMethod, o, [&](EchoClient& c, CallPhase& p) {
    std::string out;
    c.send_whoami();
    p.MarkSent();
    c.recv_whoami(out);
    return out;
  });
}

inline std::string Slow(Channel& ch, int32_t millis, const CallOptions& o = {}) {
  return ch.Call<EchoClient>(kSlowMethod, o, [&](EchoClient& c, CallPhase& p) {
    std::string out;
    c.send_slow(millis);
    p.MarkSent();
    c.recv_slow(out);
    return out;
  });
}

inline void Fail(Channel& ch, const std::string& message, const CallOptions& o = {}) {
  ch.Call<EchoClient>(kFailMethod, o, [&](EchoClient& c, CallPhase& p) {
    c.send_fail(message);
    p.MarkSent();
    c.recv_fail();
  });
}

inline int64_t Increment(Channel& ch, int64_t delta, const CallOptions& o = {}) {
  return ch.Call<EchoClient>(kIncrementMethod, o, [&](EchoClient& c, CallPhase& p) {
    c.send_increment(delta);
    p.MarkSent();
    return c.recv_increment();
  });
}

inline void Notify(Channel& ch, const std::string& message, const CallOptions& o = {}) {
  ch.Call<EchoClient>(kNotifyMethod, o, [&](EchoClient& c, CallPhase& p) {
    c.send_notify(message);
    p.MarkSent();
  });
}

// The same calls, asynchronous (Channel::CallAsync), as fulcrum-gen writes an async() method.
inline Future<std::string> EchoAsync(Channel& ch, const std::string& message,
                                     const CallOptions& o = {}) {
  return ch.CallAsync<EchoClient>(
      kEchoMethod, o, [&](EchoClient& c) { c.send_echo(message); },
      [](EchoClient& c) {
        std::string out;
        c.recv_echo(out);
        return out;
      });
}

inline Future<std::string> SlowAsync(Channel& ch, int32_t millis, const CallOptions& o = {}) {
  return ch.CallAsync<EchoClient>(
      kSlowMethod, o, [&](EchoClient& c) { c.send_slow(millis); },
      [](EchoClient& c) {
        std::string out;
        c.recv_slow(out);
        return out;
      });
}

inline Future<void> FailAsync(Channel& ch, const std::string& message, const CallOptions& o = {}) {
  return ch.CallAsync<EchoClient>(
      kFailMethod, o, [&](EchoClient& c) { c.send_fail(message); },
      [](EchoClient& c) { c.recv_fail(); });
}

inline Future<int64_t> IncrementAsync(Channel& ch, int64_t delta, const CallOptions& o = {}) {
  return ch.CallAsync<EchoClient>(
      kIncrementMethod, o, [&](EchoClient& c) { c.send_increment(delta); },
      [](EchoClient& c) { return c.recv_increment(); });
}

}  // namespace fulcrum::testing
