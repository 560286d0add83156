#include "engine/core/arena.h"

#include <algorithm>

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc {

namespace {
constexpr size_t kAlign = 64;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Arena::Arena(Device device, size_t initial_bytes) : device_(device) {
  blocks_.reserve(64);
  destructors_.reserve(1024);
  if (initial_bytes) add_block(initial_bytes);
}

Arena::~Arena() {
  reset();
  free_blocks();
}

void Arena::add_block(size_t bytes) {
  bytes = round_up(std::max<size_t>(bytes, 1 << 20));
  char* p = static_cast<char*>(backend(device_).allocate(bytes));
  blocks_.push_back({p, bytes, 0});
}

void Arena::free_blocks() {
  for (Block& b : blocks_) backend(device_).deallocate(b.data);
  blocks_.clear();
}

size_t Arena::capacity() const {
  size_t c = 0;
  for (const Block& b : blocks_) c += b.size;
  return c;
}

void* Arena::allocate(size_t bytes) {
  bytes = round_up(std::max<size_t>(bytes, 1));
  if (blocks_.empty() || blocks_.back().offset + bytes > blocks_.back().size) {
    // Grow geometrically so the number of blocks before the first merge stays small.
    add_block(std::max(bytes, capacity() / 2));
  }
  Block& b = blocks_.back();
  void* p = b.data + b.offset;
  b.offset += bytes;
  used_ += bytes;
  peak_ = std::max(peak_, used_);
  return p;
}

Tensor Arena::tensor(const Shape& shape, DType dtype) {
  return Tensor::wrap(allocate(static_cast<size_t>(shape.numel()) * dtype_size(dtype)), shape, device_, dtype);
}

void Arena::reset() {
  for (auto it = destructors_.rbegin(); it != destructors_.rend(); ++it) it->second(it->first);
  destructors_.clear();
  if (blocks_.size() > 1) {  // merge: the next step of the same shape fits in one block
    const size_t total = capacity();
    free_blocks();
    add_block(total);
  }
  for (Block& b : blocks_) b.offset = 0;
  used_ = 0;
}

}  // namespace cpc
