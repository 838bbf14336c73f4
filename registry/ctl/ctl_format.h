// Output of `fulcrumctl`: readable tables by default, JSON with --json. Pure functions of the
// registry's answers so they are tested without a registry.
//
//   std::cout << FormatServices(summaries, /*json=*/false);
//
// Thread-safe (no state).
#pragma once

#include <string>
#include <vector>

#include "fulcrum/idl/Registry.h"

namespace fulcrum::registry {

std::string FormatServices(const std::vector<thrift::ServiceSummary>& services, bool json);
// Master-slave services get GROUP, ROLE, EPOCH and POSITION columns and a table of groups.
std::string FormatInstances(const thrift::ServiceSnapshot& snapshot, bool json);
// The answer to `fulcrumctl promote`.
std::string FormatPromoted(const thrift::GroupState& group, bool json);
// Every service's instances: tables one after another, or one JSON array of services.
std::string FormatAllInstances(const std::vector<thrift::ServiceSnapshot>& snapshots, bool json);

// Left-aligned columns separated by two spaces; the first row is the header.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace fulcrum::registry
