// copy_async / wait_copy: a host tensor copied to the backend's device arrives intact
// (several copies in flight, waited for in order).
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase copy_case() {
  OpCase c;
  c.name = "copy_async/three_in_flight";
  c.ops = {Op::copy_async};
  c.inputs = {Shape{5, 1001}, Shape{3}, Shape{70000}};
  c.run = [](Backend& b, const Tensors& in) {
    Tensors out;
    std::vector<uint64_t> tickets;
    for (const Tensor& x : in) {
      const Tensor host = x.to(Device::cpu());
      out.push_back(zeros_like(x));
      tickets.push_back(b.copy_async(out.back(), host));
    }
    for (uint64_t t : tickets) b.wait_copy(t);
    return out;
  };
  c.reference = [](const std::vector<Vec>& in) { return in; };
  c.tol = 0;
  c.exact = true;
  return c;
}

CPC_OP_CASES({copy_case()});

}  // namespace
}  // namespace cpc::ops_test
