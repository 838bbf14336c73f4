// fulcrum-gen: writes <name>_fulcrum.{h,cpp} (balanced clients and server glue) from the JSON
// the stock compiler writes for an IDL.
//
//   thrift -r --gen json -out gen/json calculator.thrift
//   fulcrum-gen --idl calculator.thrift --out gen gen/json/calculator.json
//
// Exits 1 with a message naming the file (and the service, function and annotation) when the
// input is missing, malformed, or the IDL's annotations are wrong.
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>

#include <gflags/gflags.h>

#include "emit.h"
#include "fulcrum/command_line.h"
#include "idl.h"

DEFINE_string(idl, "", "The IDL the JSON was made from, as messages and the output name it");
DEFINE_string(out, ".", "Directory to write <name>_fulcrum.h and <name>_fulcrum.cpp into");

namespace {

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Writes through a temporary file so that an interrupted run leaves no half-written output.
void WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw fulcrum::codegen::GenError(tmp + ": cannot write the file");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw fulcrum::codegen::GenError(path + ": cannot write the file");
  }
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv,
                            "usage: fulcrum-gen [--idl FILE.thrift] [--out DIR] FILE.json\n  "
                            "Writes <name>_fulcrum.{h,cpp} from the JSON of `thrift --gen json`.");
  if (argc != 2) {
    std::fprintf(stderr,
                 "fulcrum-gen: expected one JSON file (from thrift -r --gen json); "
                 "usage: fulcrum-gen [--idl FILE.thrift] [--out DIR] FILE.json\n");
    return 2;
  }
  std::string json_path = argv[1];
  try {
    fulcrum::codegen::Idl idl = fulcrum::codegen::Idl::Load(json_path, FLAGS_idl);
    std::string name = BaseName(FLAGS_idl.empty() ? json_path : FLAGS_idl);
    fulcrum::codegen::Output out = fulcrum::codegen::Emit(idl, name);
    std::string stem = FLAGS_out + "/" + idl.main().name + "_fulcrum";
    WriteFile(stem + ".h", out.header);
    WriteFile(stem + ".cpp", out.source);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fulcrum-gen: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
