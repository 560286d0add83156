#include "tools/cli/output_path.h"

#include <unistd.h>

#include <filesystem>

#include "engine/core/error.h"

namespace cpc::tools {

void check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  CPC_CHECK(!path.empty(), "--out: empty path");
  const fs::path parent = fs::absolute(path).parent_path();
  std::error_code ec;
  CPC_CHECK(fs::is_directory(parent, ec), "--out ", path, ": directory ", parent.string(), " does not exist");
  CPC_CHECK(access(parent.c_str(), W_OK) == 0, "--out ", path, ": directory ", parent.string(), " is not writable");
  CPC_CHECK(!fs::is_directory(path, ec), "--out ", path, ": is a directory; expected a file name");
}

}  // namespace cpc::tools
