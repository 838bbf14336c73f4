#include "fulcrum/registrar.h"

#include "factory_table.h"
#include "unknown_scheme.h"

namespace fulcrum {
namespace {

internal::FactoryTable<RegistrarFactory>& Schemes() {
  static auto* schemes = new internal::FactoryTable<RegistrarFactory>();  // usable during exit
  return *schemes;
}

}  // namespace

Status RegisterRegistrarScheme(std::string scheme, RegistrarFactory factory) {
  return Schemes().Add(std::move(scheme), std::move(factory), "registrar scheme");
}

StatusOr<std::unique_ptr<Registrar>> CreateRegistrar(std::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "registrar URI '" + std::string(uri) + "' is not scheme://...");
  }
  const std::string_view scheme = uri.substr(0, sep);
  std::optional<RegistrarFactory> factory = Schemes().Find(scheme);
  if (!factory) return UnknownSchemeError("registrar", scheme, uri, Schemes().Names());
  return (*factory)(uri.substr(sep + 3));
}

}  // namespace fulcrum
