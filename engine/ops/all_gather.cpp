// ops::all_gather: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct AllGatherNode final : Node {
  Var *x, *y;
  Communicator* comm;
  AllGatherNode(Var* x_, Var* y_, Communicator* c) : x(x_), y(y_), comm(c) {}
  const char* name() const override { return "all_gather"; }
  void backward(Tape& tape) override {
    Tensor dy = y->grad;
    if (!dy.defined()) {  // every rank must take part in the reduce-scatter
      dy = tape.alloc(y->value.shape(), y->value.device());
      be(y).fill(dy, 0.f);
    }
    Tensor dx = tape.alloc(x->value.shape(), x->value.device());
    comm->reduce_scatter(dy.contiguous(), dx);
    if (wants_grad(x)) be(x).axpy(1.f, dx, tape.grad(x));
  }
};

}  // namespace

Var* all_gather(Var* x, Communicator& comm) {
  check_var(x, "all_gather", "input");
  profiler::ProfileScope prof("all_gather", false, x->value.device());
  CPC_CHECK(x->value.rank() >= 1, "all_gather: input ", x->value.shape(), " needs a leading dimension");
  Shape ys = x->value.shape();
  ys[0] *= comm.world();
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(ys, x->value.device());
  comm.allgather(x->value.contiguous(), y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<AllGatherNode>(x, out, &comm);
  return out;
}

}  // namespace cpc::ops
