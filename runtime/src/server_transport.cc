#include "fulcrum/server_transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include <glog/logging.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

namespace fulcrum {

using apache::thrift::transport::TBufferBase;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TTransportException;

std::shared_ptr<apache::thrift::protocol::TProtocolFactory> ServerProtocolFactory(
    Protocol protocol, uint32_t max_frame_size) {
  // A container's elements take at least a byte each, so one frame bounds its length too.
  const auto limit = static_cast<int32_t>(std::min<uint32_t>(max_frame_size, INT32_MAX));
  if (protocol == Protocol::kCompact) {
    return std::make_shared<apache::thrift::protocol::TCompactProtocolFactoryT<TBufferBase>>(limit,
                                                                                             limit);
  }
  return std::make_shared<apache::thrift::protocol::TBinaryProtocolFactoryT<TBufferBase>>(
      limit, limit, /*strict_read=*/true, /*strict_write=*/true);
}

GuardedNonblockingServerSocket::GuardedNonblockingServerSocket(const std::string& host, int port,
                                                               const std::atomic<bool>* stopping)
    : TNonblockingServerSocket(host, port), stopping_(stopping) {}

std::shared_ptr<TSocket> GuardedNonblockingServerSocket::acceptImpl() {
  try {
    return TNonblockingServerSocket::acceptImpl();
  } catch (const TTransportException& e) {
    LOG_IF(WARNING, stopping_ == nullptr || !stopping_->load(std::memory_order_relaxed))
        << "accepting a connection on port " << getListenPort() << " failed: " << e.what();
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) != 0) throw;
    ::close(ends[1]);
    return std::make_shared<TSocket>(ends[0]);
  }
}

}  // namespace fulcrum
