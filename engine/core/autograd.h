#pragma once
// Reverse-mode autograd on a tape of coarse ops (conv1d, gru, linear, norms, ...).
// Each op appends one Node with a hand-written backward; backward() walks the tape
// in reverse. Activations, gradients and nodes live in the tape's arenas and are
// released by reset(), once per training step.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

#include "engine/core/arena.h"
#include "engine/core/op_dims.h"
#include "engine/core/tensor.h"

namespace cpc {

class Tape;

// A value in the graph with its gradient. Activations are created by ops and live
// until Tape::reset(); parameters are Parameter objects owned by modules.
class Var {
 public:
  Var() = default;
  Var(Tensor v, bool requires_grad_) : value(std::move(v)), requires_grad(requires_grad_) {}
  virtual ~Var() = default;
  Tensor value;
  Tensor grad;  // undefined until backward reaches this value
  bool requires_grad = false;
};

// A trainable tensor. Its gradient is persistent and accumulates across backward
// calls until zero_grad().
class Parameter : public Var {
 public:
  Parameter() = default;
  explicit Parameter(Tensor v) : Var(std::move(v), true) { grad = Tensor::zeros(value.shape(), value.device()); }
  void zero_grad();
};

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  virtual void backward(Tape& tape) = 0;
};

// Whether ops record nodes (thread-local). Eval and inference run under NoGradGuard.
struct GradMode {
  static bool enabled();
  static void set(bool on);
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::enabled()) { GradMode::set(false); }
  ~NoGradGuard() { GradMode::set(prev_); }

 private:
  bool prev_;
};

class Tape {
 public:
  Tape();
  ~Tape();
  // The tape ops record on: the innermost TapeScope's, else a per-thread default.
  static Tape& current();

  // Uninitialised / zeroed step memory on a device.
  Tensor alloc(const Shape& shape, Device device, DType dtype = DType::f32);
  Tensor zeros(const Shape& shape, Device device);
  Var* var(Tensor value, bool requires_grad = false);
  // Whether an op on these inputs records a node: grad mode is on and any input requires grad.
  static bool records(std::initializer_list<const Var*> inputs);
  // A Var for an op's output, requiring grad if records(inputs).
  Var* output(Tensor value, std::initializer_list<const Var*> inputs);

  template <class N, class... Args>
  void record(Args&&... args) {
    nodes_.push_back(objects_.make<N>(std::forward<Args>(args)...));
  }

  // The gradient of v, allocated (zeros) on first use. Only for v->requires_grad.
  const Tensor& grad(Var* v);
  // The gradient of v for a backward kernel that writes all of it: on first use allocated
  // but not zeroed, and accumulate = false (the kernel overwrites it: zeroing it first
  // and adding into it would cost two more passes over memory); after that the existing
  // gradient, and accumulate = true.
  const Tensor& grad_to_write(Var* v, bool& accumulate);

  // Seeds d(root)/d(root) = 1 for a scalar root, or the given upstream gradients.
  void backward(Var* root);
  void backward(const std::vector<std::pair<Var*, Tensor>>& seeds) { backward(seeds.data(), seeds.size()); }
  void backward(const std::pair<Var*, Tensor>* seeds, size_t count);

  // Ends the step: forgets the nodes and all step memory.
  void reset();

  size_t num_nodes() const { return nodes_.size(); }
  Arena& arena(Device device);

  // The step's arithmetic (train.precision): ops with a mixed-precision form (linear,
  // conv1d, the GRU's batched GEMMs) run in it, forward and backward. fp32 by default.
  Precision precision() const { return precision_; }
  void set_precision(Precision p) { precision_ = p; }

 private:
  Precision precision_ = Precision::fp32;
  Arena objects_;
  Arena cpu_;
  std::unique_ptr<Arena> accel_;  // created on first use of an accelerator
  std::vector<Node*> nodes_;
};

// Makes a tape current for a scope (nests).
class TapeScope {
 public:
  explicit TapeScope(Tape& t);
  ~TapeScope();

 private:
  Tape* prev_;
};

}  // namespace cpc
