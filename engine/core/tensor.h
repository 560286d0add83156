#pragma once
// Tensor: a typed, shaped view of device memory. Up to 4-D, row-major; views share
// storage. Owning tensors (parameters, optimizer state) hold a Buffer; tensors carved
// from a step Arena hold none and live until the arena is reset.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/shape.h"

namespace cpc {

// A block of device memory returned to its backend on destruction.
class Buffer {
 public:
  Buffer(size_t bytes, Device device);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;

  // Owning allocations (heap or device memory through the device's backend).
  static Tensor empty(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::f32);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values, Device device = Device::cpu());
  // A non-owning view of memory that outlives the tensor (arena blocks).
  static Tensor wrap(void* data, const Shape& shape, Device device, DType dtype = DType::f32);

  bool defined() const { return data_ != nullptr || (rank() > 0 && numel() == 0); }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t size(int dim) const { return shape_[dim]; }
  int64_t numel() const { return shape_.numel(); }
  int64_t stride(int dim) const { return strides_[dim < 0 ? dim + rank() : dim]; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;

  void* raw() const { return data_; }
  // Typed access; checks the dtype (f32) so a bf16 tensor never reaches an f32 kernel.
  float* f32() const;

  // Views (no copy).
  Tensor slice(int64_t begin, int64_t end) const;               // rows [begin, end) of dim 0
  Tensor narrow(int dim, int64_t start, int64_t length) const;  // may be non-contiguous
  Tensor reshape(const Shape& shape) const;                     // contiguous only

  // Copies.
  Tensor clone() const;                  // owning, contiguous
  Tensor contiguous() const;             // itself if contiguous, else an owning copy
  Tensor to(Device device) const;        // owning copy on another device
  void copy_from(const Tensor& src);     // same shape, any devices, both contiguous
  std::vector<float> to_vector() const;  // host copy of an f32 tensor

 private:
  std::shared_ptr<Buffer> owner_;
  void* data_ = nullptr;
  Shape shape_;
  int64_t strides_[kMaxRank] = {0, 0, 0, 0};
  Device device_;
  DType dtype_ = DType::f32;

  void set_contiguous_strides();
};

// Throws "<what>: expected <rank>-D (<names>), found <shape>" style errors.
void check_rank(const Tensor& t, int rank, const char* what, const char* layout);
void check_same_shape(const Tensor& a, const Tensor& b, const char* what);

}  // namespace cpc
