// DebugProtoTest uses the empty struct Empty as a set element / map key; the stock compiler
// declares its operator< and leaves the definition to the user. All Empty values are equal.
#include "DebugProtoTest_types.h"

namespace thrift::test::debug {

bool Empty::operator<(const Empty&) const { return false; }

}  // namespace thrift::test::debug
