#include "thrift_logging.h"

#include <cstring>
#include <mutex>

#include <glog/logging.h>
#include <thrift/Thrift.h>

namespace fulcrum::internal {
namespace {

void ThriftOutputToGlog(const char* message) {
  // Routine narration (the nonblocking server's start and stop), and failures the runtime
  // reports itself with more context (a refused connect is an endpoint failure the channel
  // counts, names in its errors and ejects for; a client gone before its reply is the server's
  // to judge), go to VLOG(1). Everything else Thrift prints is a connection or server problem
  // worth a warning.
  static constexpr const char* kQuiet[] = {
      "Serving with",          "registered for",      "join done",
      "entering loop",         "run() done",          "using libevent",
      "TSocket::open() error", "send(): Broken pipe", "send(): Connection reset by peer"};
  for (const char* quiet : kQuiet) {
    if (std::strstr(message, quiet) != nullptr) {
      VLOG(1) << "thrift: " << message;
      return;
    }
  }
  LOG(WARNING) << "thrift: " << message;
}

}  // namespace

void RouteThriftOutputToGlog() {
  static std::once_flag once;
  std::call_once(once, [] { apache::thrift::GlobalOutput.setOutputFunction(ThriftOutputToGlog); });
}

}  // namespace fulcrum::internal
