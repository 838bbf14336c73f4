// ParseCommandLine: gflags parsing for Fulcrum's binaries (and yours), with a --help that shows
// the program's usage line and its own flags, not the wall of glog's and gflags' flags that
// gflags prints by default (--helpfull still shows everything).
//
//   int main(int argc, char** argv) {
//     fulcrum::ParseCommandLine(&argc, &argv, "usage: my_server --port=N [--registrar=URI]");
//     google::InitGoogleLogging(argv[0]);
//     ...
//   }
//
// Header-only (it needs gflags, nothing of the Fulcrum runtime), so fulcrum-gen uses it too.
// Call it once, from main, before other threads start.
#pragma once

#include <gflags/gflags.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace fulcrum {
namespace internal {

// Flags defined by the libraries every binary links (glog, gflags itself): not the program's.
inline bool IsLibraryFlag(const gflags::CommandLineFlagInfo& flag) {
  const std::string_view file = flag.filename;
  for (const std::string_view lib :
       {"src/logging.cc", "src/vlog_is_on.cc", "src/utilities.cc", "src/signalhandler.cc",
        "src/gflags.cc", "src/gflags_reporting.cc", "src/gflags_completions.cc"}) {
    if (file.size() >= lib.size() && file.substr(file.size() - lib.size()) == lib) return true;
  }
  return false;
}

inline void PrintOwnFlags(std::FILE* out, std::string_view usage) {
  std::fprintf(out, "%.*s\n", static_cast<int>(usage.size()), usage.data());
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);  // sorted by file, then name
  bool any = false;
  for (const auto& f : flags) {
    if (IsLibraryFlag(f)) continue;
    if (!any) std::fprintf(out, "\nflags:\n");
    any = true;
    const std::string def = f.type == "string" ? "\"" + f.default_value + "\"" : f.default_value;
    std::fprintf(out, "  --%s (%s) type: %s default: %s\n", f.name.c_str(), f.description.c_str(),
                 f.type.c_str(), def.c_str());
  }
  std::fprintf(out,
               "\nLogging flags (glog: --logtostderr, --v, --log_dir, ...) and the rest: "
               "--helpfull\n");
}

}  // namespace internal

// Parses and removes the flags from argv. `usage` starts with "usage: <program> ...". --help
// (and -h, --helpshort) prints it and the program's own flags to stdout and exits 0; an unknown
// flag or a bad value prints gflags' error and exits 1.
inline void ParseCommandLine(int* argc, char*** argv, std::string_view usage) {
  gflags::SetUsageMessage(std::string(usage));
  for (int i = 1; i < *argc; ++i) {
    const std::string_view arg = (*argv)[i];
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help" || arg == "-help" || arg == "--helpshort") {
      internal::PrintOwnFlags(stdout, usage);
      std::exit(0);
    }
  }
  gflags::ParseCommandLineFlags(argc, argv, true);
}

}  // namespace fulcrum
