#pragma once
// Module: named parameters, buffers and children with PyTorch's naming
// ("encoder.0.weight"), state dicts, and train/eval mode.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/autograd.h"

namespace cpc {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  std::vector<std::pair<std::string, Parameter*>> named_parameters() const;
  std::vector<Parameter*> parameters() const;
  std::vector<std::pair<std::string, Tensor*>> named_buffers() const;
  int64_t num_parameters() const;

  // Parameters and buffers by full name (values share storage with the module).
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in. strict: every name must match both ways, with equal shapes.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  void save(const std::string& path) const;
  void load(const std::string& path, bool strict = true);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves parameters (and their gradients) and buffers to a device.
  void to(Device device);
  // Calls fn on this module and every descendant, parents first.
  void apply(const std::function<void(Module&)>& fn);

 protected:
  Parameter* register_parameter(const std::string& name, Tensor value);
  Tensor* register_buffer(const std::string& name, Tensor value);
  template <class M>
  M* register_module(const std::string& name, std::unique_ptr<M> child) {
    M* raw = child.get();
    children_.emplace_back(name, std::move(child));
    return raw;
  }

 private:
  bool training_ = true;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;

  void collect(const std::string& prefix, std::vector<std::pair<std::string, Parameter*>>* params,
               std::vector<std::pair<std::string, Tensor*>>* buffers) const;
};

// A module mapping one tensor to one tensor (the unit of Sequential).
class Layer : public Module {
 public:
  virtual Var* forward(Var* x) = 0;
  // relu(forward(x)); a layer that can produce it in the same pass over memory (BatchNorm)
  // overrides this. Sequential calls it for a layer followed by ReLU.
  virtual Var* forward_relu(Var* x);
  // The same, where the output may be stored as bf16 (its values rounded) because the next
  // layer takes its input so (takes_rounded_input). Default: forward_relu.
  virtual Var* forward_relu_rounded(Var* x) { return forward_relu(x); }
  // Whether this layer rounds its input to bf16 anyway on this tape and device, so that the
  // layer before may hand it over as bf16 (a convolution under precision bf16 on the
  // CPU's GEMM path: Backend::conv1d_rounded_input).
  virtual bool takes_rounded_input() const { return false; }
  Var* operator()(Var* x) { return forward(x); }
};

}  // namespace cpc
