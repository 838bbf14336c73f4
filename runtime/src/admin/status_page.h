// The runtime's /status page: every live channel (its endpoints and methods), server (its
// methods) and registration (role, epoch, lease) in the process, as JSON and as HTML made from
// that JSON, so the two always agree.
//
//   nlohmann::ordered_json status = ProcessStatus();   // keys in the order written
//   std::string page = StatusHtml(status);
//
// Thread-safe (reads the live sets under their locks).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace fulcrum::internal {

nlohmann::ordered_json ProcessStatus();
std::string StatusHtml(const nlohmann::ordered_json& status);

// Text made safe for HTML element content and attribute values.
std::string HtmlEscape(std::string_view text);

}  // namespace fulcrum::internal
