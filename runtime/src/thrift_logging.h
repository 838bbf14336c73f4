// Sends what Apache Thrift prints (its GlobalOutput, stderr by default) to glog instead.
// Thread-safe; idempotent.
#pragma once

namespace fulcrum::internal {

void RouteThriftOutputToGlog();

}  // namespace fulcrum::internal
