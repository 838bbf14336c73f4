// Status: the small result value the runtime passes internally instead of throwing.
//
//   Status s = Status::Error(StatusCode::kInvalidArgument, "weight must be >= 0");
//   if (!s.ok()) LOG(ERROR) << s;
//
// Thread-compatible value type.
#pragma once

#include <ostream>
#include <string>
#include <utility>

namespace fulcrum {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad input from the user: URI, weight, balancer name, flag
  kNotFound,           // unknown name (balancer, service, instance)
  kUnavailable,        // no endpoint to call, or every endpoint failed
  kDeadlineExceeded,   // the call's deadline passed
  kResourceExhausted,  // retry budget or pool exhausted
  kTransport,          // a transport-level failure of one attempt
  kProtocol,           // the peer sent bytes that are not Thrift
  kApplication,        // the peer answered with a TApplicationException
  kInternal,
  kCancelled,  // the caller gave up on the call (Future::Cancel)
};

const char* StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(StatusCode code, std::string message) {
    return Status(code, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

// A value or an error. Deliberately tiny: the runtime needs nothing more.
template <class T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }
  T& operator*() & { return value_; }
  const T& operator*() const& { return value_; }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }

 private:
  Status status_;
  T value_{};
};

}  // namespace fulcrum
