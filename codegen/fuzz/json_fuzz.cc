// libFuzzer target for fulcrum-gen's input: any bytes must load and emit, or fail with a
// GenError; never crash, hang or throw anything else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "emit.h"
#include "idl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    fulcrum::codegen::Idl idl = fulcrum::codegen::Idl::FromText(text, "/nonexistent");
    fulcrum::codegen::Emit(idl, "fuzz.thrift");
  } catch (const fulcrum::codegen::GenError&) {
  }
  return 0;
}
