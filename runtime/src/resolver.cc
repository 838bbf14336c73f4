#include "fulcrum/resolver.h"

#include <charconv>
#include <optional>
#include <vector>

#include "factory_table.h"
#include "unknown_scheme.h"

namespace fulcrum {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status Invalid(std::string message) {
  return Status::Error(StatusCode::kInvalidArgument, std::move(message));
}

// Parses a whole non-negative integer, rejecting signs, spaces and trailing junk.
template <class T>
bool ParseUnsigned(std::string_view s, T* out) {
  if (s.empty() || s.front() == '-' || s.front() == '+') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// A resolver for a fixed list: delivers it once, on Start.
class StaticResolver final : public Resolver {
 public:
  explicit StaticResolver(EndpointSet set) : set_(std::move(set)) {}
  Status Start(ResolverListener* listener) override {
    listener->OnUpdate(set_);
    return Status::Ok();
  }
  void Stop() override {}

 private:
  const EndpointSet set_;
};

internal::FactoryTable<ResolverFactory>& Schemes() {
  static auto* schemes = [] {
    auto* t = new internal::FactoryTable<ResolverFactory>();  // never destroyed: usable at exit
    Status added = t->Add(
        "static",
        [](std::string_view rest) -> StatusOr<std::unique_ptr<Resolver>> {
          StatusOr<EndpointSet> set = ParseStaticEndpoints(rest);
          if (!set.ok()) return set.status();
          return std::unique_ptr<Resolver>(new StaticResolver(std::move(set).value()));
        },
        "resolver scheme");
    (void)added;  // the table is empty: cannot fail
    return t;
  }();
  return *schemes;
}

}  // namespace

StatusOr<DiscoveryUri> SplitDiscoveryUri(std::string_view rest) {
  DiscoveryUri uri;
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    uri.service = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (uri.service.find('/') != std::string::npos) {
      return Status::Error(StatusCode::kInvalidArgument, "service name contains '/'");
    }
  }
  uri.authority = std::string(rest);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "query parameter '" + std::string(kv) + "' has no '='");
    }
    uri.params.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return uri;
}

StatusOr<Endpoint> ParseHostPort(std::string_view hp) {
  hp = Trim(hp);
  Endpoint e;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    const size_t close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':') {
      return Invalid("endpoint '" + std::string(hp) + "': want [ipv6]:port");
    }
    e.host = std::string(hp.substr(1, close - 1));
    port = hp.substr(close + 2);
  } else {
    const size_t colon = hp.rfind(':');
    if (colon == std::string_view::npos) {
      return Invalid("endpoint '" + std::string(hp) + "': missing ':port'");
    }
    e.host = std::string(hp.substr(0, colon));
    port = hp.substr(colon + 1);
    if (e.host.find(':') != std::string::npos) {
      return Invalid("endpoint '" + std::string(hp) + "': put IPv6 addresses in brackets");
    }
  }
  if (e.host.empty()) return Invalid("endpoint '" + std::string(hp) + "': empty host");
  uint32_t p = 0;
  if (!ParseUnsigned(port, &p) || p == 0 || p > 65535) {
    return Invalid("endpoint '" + std::string(hp) + "': port must be a number in 1..65535");
  }
  e.port = static_cast<uint16_t>(p);
  return e;
}

StatusOr<EndpointSet> ParseStaticEndpoints(std::string_view list) {
  EndpointSet set;
  if (Trim(list).empty()) return Invalid("static:// needs at least one host:port");
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = Trim(list.substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) return Invalid("static:// list has an empty entry");

    // host:port;key=value;key=value
    const size_t semi = item.find(';');
    StatusOr<Endpoint> e = ParseHostPort(item.substr(0, semi));
    if (!e.ok()) return e.status();
    std::string_view attrs = semi == std::string_view::npos ? "" : item.substr(semi + 1);
    while (!attrs.empty()) {
      const size_t next = attrs.find(';');
      std::string_view kv = Trim(attrs.substr(0, next));
      attrs = next == std::string_view::npos ? "" : attrs.substr(next + 1);
      const size_t eq = kv.find('=');
      if (eq == std::string_view::npos) {
        return Invalid("endpoint '" + std::string(item) + "': attribute '" + std::string(kv) +
                       "' is not key=value");
      }
      std::string_view key = Trim(kv.substr(0, eq));
      std::string_view value = Trim(kv.substr(eq + 1));
      if (key == "weight") {
        uint32_t w = 0;
        if (!ParseUnsigned(value, &w) || w > 1'000'000) {
          return Invalid("endpoint '" + std::string(item) + "': weight '" + std::string(value) +
                         "' is not a whole number in 0..1000000");
        }
        e->weight = w;
      } else if (key == "zone") {
        e->zone = std::string(value);
      } else {
        e->tags[std::string(key)] = std::string(value);
      }
    }
    set.endpoints.push_back(std::move(e).value());
    if (comma == list.size()) break;
  }
  set.version = 1;
  return set;
}

Status RegisterResolverScheme(std::string scheme, ResolverFactory factory) {
  return Schemes().Add(std::move(scheme), std::move(factory), "resolver scheme");
}

StatusOr<std::unique_ptr<Resolver>> CreateResolver(std::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return Invalid("target '" + std::string(uri) +
                   "' is not a URI: want scheme://..., e.g. static://127.0.0.1:9090");
  }
  std::string_view scheme = uri.substr(0, sep);
  std::optional<ResolverFactory> factory = Schemes().Find(scheme);
  if (!factory) return UnknownSchemeError("resolver", scheme, uri, Schemes().Names());
  return (*factory)(uri.substr(sep + 3));
}

}  // namespace fulcrum
