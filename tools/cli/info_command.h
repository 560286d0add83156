#pragma once
#include <string>

namespace cpc::tools {
// Prints build options, library versions, thread counts and devices.
int run_info();
}  // namespace cpc::tools
