// The stock compiler declares operator< for a struct used as a set element or map key but
// leaves its definition to the user (Apache Thrift's own test suite defines it too).
// ThriftTest uses Insanity that way; any total order will do for the tests.
#include <thrift/TToString.h>

#include "ThriftTest_types.h"

namespace thrift::test {

bool Insanity::operator<(const Insanity& other) const {
  return apache::thrift::to_string(*this) < apache::thrift::to_string(other);
}

}  // namespace thrift::test
