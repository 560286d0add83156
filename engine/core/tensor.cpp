#include "engine/core/tensor.h"

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc {

Buffer::Buffer(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = bytes ? backend(device).allocate(bytes) : nullptr;
}

Buffer::~Buffer() {
  if (data_) backend(device_).deallocate(data_);
}

void Tensor::set_contiguous_strides() {
  int64_t s = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    strides_[i] = s;
    s *= shape_[i];
  }
}

bool Tensor::is_contiguous() const {
  int64_t s = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != s) return false;
    s *= shape_[i];
  }
  return true;
}

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  Tensor t;
  t.shape_ = shape;
  t.device_ = device;
  t.dtype_ = dtype;
  t.owner_ = std::make_shared<Buffer>(static_cast<size_t>(shape.numel()) * dtype_size(dtype), device);
  t.data_ = t.owner_->data();
  t.set_contiguous_strides();
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  if (t.numel()) {
    CPC_CHECK(dtype == DType::f32, "Tensor::zeros: only f32 can be filled, found ", dtype_name(dtype));
    backend(device).fill(t, 0.f);
  }
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values, Device device) {
  CPC_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from_vector: shape ", shape, " needs ",
            shape.numel(), " values, found ", values.size());
  Tensor t = empty(shape, device);
  if (!values.empty())
    backend(device).copy(t.raw(), device, values.data(), Device::cpu(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, Device device, DType dtype) {
  Tensor t;
  t.data_ = data;
  t.shape_ = shape;
  t.device_ = device;
  t.dtype_ = dtype;
  t.set_contiguous_strides();
  return t;
}

float* Tensor::f32() const {
  CPC_CHECK(dtype_ == DType::f32, "tensor ", shape_, ": expected dtype f32, found ", dtype_name(dtype_));
  return static_cast<float*>(data_);
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  CPC_CHECK(rank() >= 1, "Tensor::slice: a 0-D tensor has no rows");
  CPC_CHECK(0 <= begin && begin <= end && end <= shape_[0], "Tensor::slice: rows [", begin, ", ", end,
            ") out of range for shape ", shape_);
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.data_ = static_cast<char*>(data_) + begin * strides_[0] * static_cast<int64_t>(dtype_size(dtype_));
  return t;
}

Tensor Tensor::narrow(int dim, int64_t start, int64_t length) const {
  if (dim < 0) dim += rank();
  CPC_CHECK(0 <= dim && dim < rank(), "Tensor::narrow: dim ", dim, " out of range for shape ", shape_);
  CPC_CHECK(0 <= start && length >= 0 && start + length <= shape_[dim], "Tensor::narrow: [", start, ", ",
            start + length, ") out of range for dim ", dim, " of shape ", shape_);
  Tensor t = *this;
  t.shape_[dim] = length;
  t.data_ = static_cast<char*>(data_) + start * strides_[dim] * static_cast<int64_t>(dtype_size(dtype_));
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  CPC_CHECK(shape.numel() == numel(), "Tensor::reshape: cannot view ", shape_, " as ", shape);
  CPC_CHECK(is_contiguous(), "Tensor::reshape: tensor ", shape_, " is not contiguous");
  Tensor t = *this;
  t.shape_ = shape;
  t.set_contiguous_strides();
  return t;
}

Tensor Tensor::clone() const { return to(device_); }

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  CPC_CHECK(device_.kind == DeviceKind::cpu && dtype_ == DType::f32,
            "Tensor::contiguous: strided copies exist for f32 CPU tensors only, found ", dtype_name(dtype_), " on ",
            device_.str());
  Tensor out = empty(shape_, device_, dtype_);
  const float* src = f32();
  float* dst = out.f32();
  int64_t dims[kMaxRank] = {1, 1, 1, 1}, st[kMaxRank] = {0, 0, 0, 0};
  for (int i = 0; i < rank(); ++i) {  // right-align into 4-D
    dims[kMaxRank - rank() + i] = shape_[i];
    st[kMaxRank - rank() + i] = strides_[i];
  }
  int64_t n = 0;
  for (int64_t a = 0; a < dims[0]; ++a)
    for (int64_t b = 0; b < dims[1]; ++b)
      for (int64_t c = 0; c < dims[2]; ++c)
        for (int64_t d = 0; d < dims[3]; ++d) dst[n++] = src[a * st[0] + b * st[1] + c * st[2] + d * st[3]];
  return out;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, device, dtype_);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  CPC_CHECK(src.shape_ == shape_, "Tensor::copy_from: shape ", src.shape_, " into ", shape_);
  CPC_CHECK(src.dtype_ == dtype_, "Tensor::copy_from: dtype ", dtype_name(src.dtype_), " into ", dtype_name(dtype_));
  CPC_CHECK(is_contiguous() && src.is_contiguous(), "Tensor::copy_from: both tensors must be contiguous");
  if (nbytes() == 0) return;
  Device via = device_.kind != DeviceKind::cpu ? device_ : src.device_;
  backend(via).copy(data_, device_, src.data_, src.device_, nbytes());
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  Tensor host = Tensor::wrap(out.data(), shape_, Device::cpu());
  host.copy_from(contiguous());
  return out;
}

void check_rank(const Tensor& t, int rank, const char* what, const char* layout) {
  CPC_CHECK(t.defined(), what, ": expected a ", rank, "-D tensor ", layout, ", found none");
  CPC_CHECK(t.rank() == rank, what, ": expected a ", rank, "-D tensor ", layout, ", found shape ", t.shape());
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
  CPC_CHECK(a.shape() == b.shape(), what, ": shapes differ, ", a.shape(), " vs ", b.shape());
}

}  // namespace cpc
