#pragma once
// The checkout a binary was built from, for the scripts and configs it runs. The
// environment variable CPC_SOURCE_DIR overrides the path compiled in, so binaries
// copied to another machine (the GPU check's bundle, tools/gpu/) use that machine's
// checkout. Include only where CPC_SOURCE_DIR is a compile definition.
#include <cstdlib>
#include <string>

namespace cpc::tools {

inline std::string source_dir() {
  const char* env = std::getenv("CPC_SOURCE_DIR");
  return env && *env ? std::string(env) : std::string(CPC_SOURCE_DIR);
}

inline std::string source_path(const std::string& relative) { return source_dir() + "/" + relative; }

}  // namespace cpc::tools
