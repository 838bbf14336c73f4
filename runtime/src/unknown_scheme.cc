#include "unknown_scheme.h"

namespace fulcrum {
namespace {

struct ShippedScheme {
  std::string_view scheme;
  std::string_view library;  // the CMake target, in-tree and installed alike
  std::string_view call;
  std::string_view header;
};

constexpr ShippedScheme kShipped[] = {
    {"fulcrum", "Fulcrum::fulcrum", "fulcrum::RegisterFulcrumDiscovery()",
     "fulcrum/discovery/fulcrum.h"},
    {"etcd", "Fulcrum::etcd", "fulcrum::RegisterEtcdDiscovery()", "fulcrum/discovery/etcd.h"},
};

}  // namespace

Status UnknownSchemeError(std::string_view kind, std::string_view scheme, std::string_view uri,
                          const std::vector<std::string>& known) {
  std::string message = "unknown ";
  message.append(kind).append(" scheme '").append(scheme).append("' in '").append(uri);
  message.append("' (known: ");
  for (size_t i = 0; i < known.size(); ++i) {
    if (i > 0) message.append(", ");
    message.append(known[i]);
  }
  message.append(known.empty() ? "none)" : ")");
  for (const ShippedScheme& s : kShipped) {
    if (s.scheme != scheme) continue;
    message.append(": link ").append(s.library).append(" and call ").append(s.call);
    message.append(" once at startup (").append(s.header).append(")");
  }
  return Status::Error(StatusCode::kInvalidArgument, std::move(message));
}

}  // namespace fulcrum
