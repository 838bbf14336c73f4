// The Thrift server pieces every Fulcrum server is built from (fulcrum::Server, and the
// registry daemon's main and heartbeat ports), so that they read the wire alike and survive
// the same faults. For a hand-built Thrift server:
//
//   auto protocol = fulcrum::ServerProtocolFactory(fulcrum::Protocol::kBinary, 16 << 20);
//   auto socket = std::make_shared<fulcrum::GuardedNonblockingServerSocket>(host, port, &stopping);
//   auto server = std::make_shared<TNonblockingServer>(processor, protocol, socket);
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TNonblockingServerSocket.h>

#include "fulcrum/protocol.h"

namespace fulcrum {

// The server side of `protocol` over Fulcrum's framed transports (fulcrum::FramedTransport, or
// the nonblocking server's per-frame memory buffer): strict reads (a message must carry a
// version), and no string or container longer than one frame, so junk from a client fails at
// once instead of making the server allocate whatever length the junk claims. Specialised on
// TBufferBase, the base of both transports, for the protocol's inline fast path.
std::shared_ptr<apache::thrift::protocol::TProtocolFactory> ServerProtocolFactory(
    Protocol protocol, uint32_t max_frame_size);

// TNonblockingServer calls accept() from a libevent callback on I/O thread 0 and lets any error
// escape: the exception unwinds that thread's event loop out of serve(), and every connection
// on the thread (calls in flight included) is left unserved. Replacing the listening socket to
// stop accepting makes that happen whenever a connection was just reported; so can a peer that
// resets before the accept, or a process out of descriptors. With this socket an accept that
// fails hands the server a socket whose peer is already closed instead: it reads EOF and
// recycles the connection, and the loop goes on. The failure is logged unless `*stopping`.
class GuardedNonblockingServerSocket : public apache::thrift::transport::TNonblockingServerSocket {
 public:
  GuardedNonblockingServerSocket(const std::string& host, int port,
                                 const std::atomic<bool>* stopping);

 protected:
  std::shared_ptr<apache::thrift::transport::TSocket> acceptImpl() override;

 private:
  const std::atomic<bool>* const stopping_;
};

}  // namespace fulcrum
