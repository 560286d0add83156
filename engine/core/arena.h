#pragma once
// A bump allocator for one training step. Activations, gradients and tape nodes are
// carved from it and released all at once by reset(). The first steps may grow it
// (one block per request that does not fit); reset() then merges the blocks into one
// of the peak size, so from then on a step allocates nothing from the heap.
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/shape.h"
#include "engine/core/tensor.h"

namespace cpc {

class Arena {
 public:
  explicit Arena(Device device = Device::cpu(), size_t initial_bytes = 0);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(size_t bytes);  // 64-byte aligned
  Tensor tensor(const Shape& shape, DType dtype = DType::f32);

  // Host-side objects with destructors (tape nodes); CPU arenas only.
  template <class T, class... Args>
  T* make(Args&&... args) {
    T* p = new (allocate(sizeof(T))) T(std::forward<Args>(args)...);
    destructors_.push_back({p, [](void* q) { static_cast<T*>(q)->~T(); }});
    return p;
  }

  void reset();
  size_t used() const { return used_; }
  size_t capacity() const;
  size_t peak() const { return peak_; }
  size_t blocks() const { return blocks_.size(); }
  Device device() const { return device_; }

 private:
  struct Block {
    char* data;
    size_t size;
    size_t offset;
  };
  Device device_;
  std::vector<Block> blocks_;
  std::vector<std::pair<void*, void (*)(void*)>> destructors_;
  size_t used_ = 0, peak_ = 0;

  void add_block(size_t bytes);
  void free_blocks();
};

}  // namespace cpc
