#include "layers/module.h"

#include <set>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "engine/ops/ops.h"

namespace cpc {

Var* Layer::forward_relu(Var* x) { return ops::relu(forward(x)); }

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Parameter*>>* params,
                     std::vector<std::pair<std::string, Tensor*>>* buffers) const {
  if (params)
    for (const auto& [n, p] : params_) params->emplace_back(prefix + n, p.get());
  if (buffers)
    for (const auto& [n, b] : buffers_) buffers->emplace_back(prefix + n, b.get());
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", params, buffers);
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Parameter*>> out;
  collect("", &out, nullptr);
  return out;
}

std::vector<Parameter*> Module::parameters() const {
  std::vector<Parameter*> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", nullptr, &out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p->value.numel();
  return n;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, p] : named_parameters()) out[n] = p->value;
  for (auto& [n, b] : named_buffers()) out[n] = *b;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::set<std::string> used;
  auto assign = [&](const std::string& name, Tensor& dst) {
    auto it = state.find(name);
    if (it == state.end()) {
      CPC_CHECK(!strict, "load_state_dict: missing key '", name, "' (expected shape ", dst.shape(), ")");
      return;
    }
    CPC_CHECK(it->second.shape() == dst.shape(), "load_state_dict: '", name, "' has shape ", it->second.shape(),
              ", the module expects ", dst.shape());
    used.insert(name);
    if (it->second.device() == dst.device()) {
      dst.copy_from(it->second);
    } else {
      dst.copy_from(it->second.to(dst.device()));
    }
  };
  for (auto& [n, p] : named_parameters()) assign(n, p->value);
  for (auto& [n, b] : named_buffers()) assign(n, *b);
  if (strict)
    for (const auto& [n, t] : state)
      CPC_CHECK(used.count(n), "load_state_dict: unexpected key '", n, "' ", t.shape(),
                " (not a parameter or buffer of this module)");
}

void Module::save(const std::string& path) const { save_tensors(path, state_dict()); }

void Module::load(const std::string& path, bool strict) { load_state_dict(load_tensors(path), strict); }

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (Parameter* p : parameters()) p->zero_grad();
}

void Module::to(Device device) {
  for (auto& [n, p] : params_) {
    p->value = p->value.to(device);
    p->grad = p->grad.to(device);
  }
  for (auto& [n, b] : buffers_) *b = b->to(device);
  for (auto& [n, c] : children_) c->to(device);
}

Parameter* Module::register_parameter(const std::string& name, Tensor value) {
  params_.emplace_back(name, std::make_unique<Parameter>(std::move(value)));
  return params_.back().second.get();
}

Tensor* Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return buffers_.back().second.get();
}

void Module::apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [name, child] : children_) child->apply(fn);
}

}  // namespace cpc
