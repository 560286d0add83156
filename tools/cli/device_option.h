#pragma once
// `--device cpu | cuda | cuda:N` for every command that computes: checks that the
// device exists (one clear message otherwise) and returns it. In a multi-rank job each
// rank takes the GPU of its node-local rank (whatever N says), as NCCL expects.
#include <string>

#include "engine/distributed/communicator.h"
#include "engine/core/device.h"

namespace cpc::tools {

Device select_device(const std::string& spec, const Communicator& comm);

}  // namespace cpc::tools
