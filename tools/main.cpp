// cpc-engine: one executable, one subcommand per job.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "engine/error.h"
#include "tools/info_command.h"

int main(int argc, char** argv) {
  CLI::App app{"cpc-engine: Contrastive Predictive Coding on ECG and audio"};
  app.require_subcommand(1);
  CLI::App* info = app.add_subcommand("info", "build options, library versions, threads and devices");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (info->parsed()) return cpc::tools::run_info();
  } catch (const cpc::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
