// RepairThriftJson: makes the stock compiler's JSON parseable by a strict parser.
//
//   std::string text = RepairThriftJson(raw);   // then nlohmann::json::parse(text)
//
// `thrift --gen json` writes a constant map whose keys are lists, sets or structs with those
// keys unquoted (`{ [1, 2]: 3 }`), which no JSON parser accepts. This rewrites every such key
// into a JSON string holding its text; nothing else changes. Input that is malformed in other
// ways is passed through for the parser to reject. Thread-safe (a pure function).
#pragma once

#include <string>
#include <string_view>

namespace fulcrum::codegen {

std::string RepairThriftJson(std::string_view raw);

}  // namespace fulcrum::codegen
