#include "fulcrum/registrar.h"

#include <map>
#include <mutex>
#include <vector>

#include "unknown_scheme.h"

namespace fulcrum {
namespace {

struct Schemes {
  std::mutex mu;
  std::map<std::string, RegistrarFactory, std::less<>> factories;
};

Schemes& GetSchemes() {
  static Schemes* schemes = new Schemes();  // never destroyed: usable during exit
  return *schemes;
}

}  // namespace

Status RegisterRegistrarScheme(std::string scheme, RegistrarFactory factory) {
  if (scheme.empty() || !factory) {
    return Status::Error(StatusCode::kInvalidArgument, "registrar scheme needs a name and factory");
  }
  Schemes& s = GetSchemes();
  std::lock_guard lock(s.mu);
  if (!s.factories.emplace(scheme, std::move(factory)).second) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "registrar scheme '" + scheme + "' is already registered");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Registrar>> CreateRegistrar(std::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "registrar URI '" + std::string(uri) + "' is not scheme://...");
  }
  const std::string_view scheme = uri.substr(0, sep);
  RegistrarFactory factory;
  {
    Schemes& s = GetSchemes();
    std::lock_guard lock(s.mu);
    auto it = s.factories.find(scheme);
    if (it == s.factories.end()) {
      std::vector<std::string> known;
      for (const auto& [name, f] : s.factories) known.push_back(name);
      return UnknownSchemeError("registrar", scheme, uri, known);
    }
    factory = it->second;
  }
  return factory(uri.substr(sep + 3));
}

}  // namespace fulcrum
