// FactoryTable: the one shape of Fulcrum's name -> factory tables (balancers by name,
// resolvers and registrars by URI scheme). Names are unique and non-empty; a lookup copies the
// factory out so that it runs without the table's lock (a factory may itself use the table).
//
//   FactoryTable<BalancerFactory>& t = ...;   // a function-local static, never destroyed
//   Status s = t.Add("mine", factory, "balancer");
//   std::optional<BalancerFactory> f = t.Find("mine");
//   std::vector<std::string> names = t.Names();   // sorted
//
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/status.h"

namespace fulcrum::internal {

template <class Factory>
class FactoryTable {
 public:
  // `kind` names the table in errors ("balancer", "resolver scheme", "registrar scheme").
  Status Add(std::string name, Factory factory, std::string_view kind) {
    if (name.empty()) {
      return Status::Error(StatusCode::kInvalidArgument, std::string(kind) + " needs a name");
    }
    if (!factory) {
      return Status::Error(StatusCode::kInvalidArgument,
                           std::string(kind) + " '" + name + "' registered without a factory");
    }
    std::lock_guard lock(mu_);
    if (factories_.contains(name)) {
      return Status::Error(StatusCode::kInvalidArgument,
                           std::string(kind) + " '" + name + "' is already registered");
    }
    factories_.emplace(std::move(name), std::move(factory));
    return Status::Ok();
  }

  std::optional<Factory> Find(std::string_view name) const {
    std::lock_guard lock(mu_);
    auto it = factories_.find(name);
    if (it == factories_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<std::string> Names() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> names;
    names.reserve(factories_.size());
    for (const auto& [name, factory] : factories_) names.push_back(name);
    return names;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Factory, std::less<>> factories_;
};

}  // namespace fulcrum::internal
