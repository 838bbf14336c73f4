// Resolver: where a channel's endpoints come from. A resolver delivers whole endpoint sets
// (never diffs); the channel diffs once.
//
//   auto resolver = fulcrum::CreateResolver("static://127.0.0.1:9001,127.0.0.1:9002;weight=3");
//
// URIs: static://host:port[;weight=N][;zone=Z],...   (fulcrum:// and etcd:// come with their
// discovery libraries, fulcrum/discovery/*.h). A watch-based resolver calls OnUpdate from its own
// thread whenever the set changes, and OnError when it cannot reach its source; the channel keeps
// the last set it had.
//
// Thread-safety: Start and Stop may be called from any thread, once each. Listener callbacks
// are serialized (never two at once for one resolver).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fulcrum/endpoint.h"
#include "fulcrum/status.h"

namespace fulcrum {

class ResolverListener {
 public:
  virtual ~ResolverListener() = default;
  virtual void OnUpdate(EndpointSet endpoints) = 0;
  // The source is unreachable or returned an error. Endpoints already delivered stay valid.
  virtual void OnError(const Status& status) = 0;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Begins delivering to `listener`, which must outlive Stop(). May call OnUpdate before it
  // returns (a static list does).
  virtual Status Start(ResolverListener* listener) = 0;
  // Stops delivering; no callback runs after Stop returns.
  virtual void Stop() = 0;
};

using ResolverFactory =
    std::function<StatusOr<std::unique_ptr<Resolver>>(std::string_view rest_of_uri)>;

// Registers a scheme ("fulcrum", "etcd"). Thread-safe.
Status RegisterResolverScheme(std::string scheme, ResolverFactory factory);

// Parses `uri` and creates its resolver. kInvalidArgument with the reason for a malformed URI
// or an unknown scheme (for fulcrum:// and etcd://, the message names the library to link and
// the registration call to make).
StatusOr<std::unique_ptr<Resolver>> CreateResolver(std::string_view uri);

// Parses the part after "static://". Exposed for tests and for tools that take endpoint lists.
StatusOr<EndpointSet> ParseStaticEndpoints(std::string_view list);

// Parses "host:port" or "[v6]:port".
StatusOr<Endpoint> ParseHostPort(std::string_view host_port);

// The part of a discovery URI after "scheme://", "authority[/service][?key=value&...]", split
// for the discovery libraries' own parsers (fulcrum://, etcd://), which check what each part
// holds.
struct DiscoveryUri {
  std::string authority;                                    // may be empty
  std::string service;                                      // empty when there is none
  std::vector<std::pair<std::string, std::string>> params;  // in the URI's order
};
// kInvalidArgument (the reason only; callers name the URI) for a service containing '/' or a
// query parameter without '='.
StatusOr<DiscoveryUri> SplitDiscoveryUri(std::string_view rest);

}  // namespace fulcrum
