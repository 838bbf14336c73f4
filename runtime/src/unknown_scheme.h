// The error for a discovery URI whose scheme nobody registered. The schemes Fulcrum ships
// (fulcrum://, etcd://) live in libraries of their own, registered by an explicit call rather
// than a static initialiser, so forgetting either step is the usual cause: the message names
// the library to link and the call to make.
//
//   return UnknownSchemeError("resolver", scheme, uri, {"static"});
//   // unknown resolver scheme 'etcd' in 'etcd://10.0.0.1:2379/calc' (known: static): link
//   // Fulcrum::etcd and call fulcrum::RegisterEtcdDiscovery() once at startup
//   // (fulcrum/discovery/etcd.h)
//
// Thread-safe (no state).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/status.h"

namespace fulcrum {

// kInvalidArgument. `kind` is "resolver" or "registrar"; `known` the schemes registered now.
Status UnknownSchemeError(std::string_view kind, std::string_view scheme, std::string_view uri,
                          const std::vector<std::string>& known);

}  // namespace fulcrum
