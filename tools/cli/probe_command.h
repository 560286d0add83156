#pragma once
// `cpc-engine probe`: multinomial logistic regression on standardised features (the
// linear probe that measures what an encoder learned).
#include <string>
#include <vector>

namespace cpc::tools {

struct ProbeArgs {
  std::string train, test, label;
  std::string feature = "context";  // context | z_mean | c_mean, or any (N, D) dataset of the files
  // Optional window filters "NAME=V[,V...]": keep windows whose integer label NAME is
  // one of the values (e.g. train on some speakers, test on the others).
  std::string train_where, test_where;
  std::string json;                 // optional output file
  double l2 = 1e-3;
  int iterations = 500;
};

struct ProbeResult {
  double accuracy = 0;
  std::vector<double> per_class;            // accuracy per class present in test
  std::vector<std::vector<int>> confusion;  // [true][predicted]
  std::vector<long long> classes;
};

ProbeResult fit_probe(const ProbeArgs& args);
int run_probe(const ProbeArgs& args);

}  // namespace cpc::tools
