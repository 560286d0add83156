#pragma once
// `cpc-engine report RUN`: one self-contained HTML page (inline SVG charts, no scripts,
// nothing fetched) of a training run: training and validation loss and accuracy against
// step, accuracy per prediction step k, learning rate, gradient norm, samples/s, the
// config, and `probe --json` results with their confusion matrices.
#include <string>
#include <vector>

namespace cpc::tools {

struct ReportArgs {
  std::string run;                  // the run directory (metrics.jsonl, checkpoint.h5)
  std::string out;                  // default RUN/report.html
  std::vector<std::string> probes;  // probe --json files
};

int run_report(const ReportArgs& args);

}  // namespace cpc::tools
