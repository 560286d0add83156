#pragma once
// Fails early (before any input is read or computed) when an output file cannot be
// written where it is asked for: missing or read-only directory, or a directory name.
#include <string>

namespace cpc::tools {

void check_output_path(const std::string& path);

}  // namespace cpc::tools
