#include "engine/core/tensor.h"

#include <gtest/gtest.h>

#include "engine/core/arena.h"
#include "engine/core/error.h"

namespace cpc {
namespace {

std::vector<float> iota(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_vector({3, 2, 4}, iota(24));
  Tensor rows = t.slice(1, 3);
  EXPECT_EQ(rows.shape(), Shape({2, 2, 4}));
  EXPECT_TRUE(rows.is_contiguous());
  rows.f32()[0] = -1.f;  // element (1, 0, 0) of t
  EXPECT_EQ(t.to_vector()[8], -1.f);
  Tensor flat = t.reshape({6, 4});
  EXPECT_EQ(flat.f32(), t.f32());
}

TEST(Tensor, TimeSliceIsAStridedViewAndCopiesCorrectly) {
  Tensor t = Tensor::from_vector({2, 3, 4}, iota(24));  // (B, T, D)
  Tensor step = t.narrow(1, 2, 1);                      // t[:, 2:3, :]
  EXPECT_FALSE(step.is_contiguous());
  EXPECT_EQ(step.to_vector(), std::vector<float>({8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_THROW(step.reshape({2, 4}), Error);
  EXPECT_EQ(step.contiguous().reshape({2, 4}).to_vector()[4], 20.f);
}

TEST(Tensor, ShapeErrorsNameWhatAndExpected) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.reshape({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Tensor::reshape: cannot view (2, 3) as (4, 2)");
  }
  EXPECT_THROW(Tensor::from_vector({2}, {1.f}), Error);
  EXPECT_THROW(t.slice(1, 3), Error);
  EXPECT_THROW(Shape({1, 2, 3, 4, 5}), Error);
}

TEST(Tensor, Bf16IsRejectedByF32Access) {
  Tensor t = Tensor::empty({4}, Device::cpu(), DType::bf16);
  EXPECT_EQ(t.nbytes(), 8u);
  EXPECT_THROW(t.f32(), Error);
}

TEST(Device, ParsesNames) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  EXPECT_THROW(parse_device("gpu"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
}

TEST(Arena, MergesBlocksSoTheNextStepFitsInOne) {
  Arena a(Device::cpu(), 0);
  for (int i = 0; i < 5; ++i) a.tensor({1 << 19});  // 2 MiB each: several blocks
  EXPECT_GT(a.blocks(), 1u);
  const size_t peak = a.used();
  a.reset();
  EXPECT_EQ(a.blocks(), 1u);
  EXPECT_GE(a.capacity(), peak);
  for (int i = 0; i < 5; ++i) a.tensor({1 << 19});
  EXPECT_EQ(a.blocks(), 1u);
}

TEST(Arena, AlignsTo64Bytes) {
  Arena a;
  for (int n : {1, 3, 17, 1000}) EXPECT_EQ(reinterpret_cast<uintptr_t>(a.tensor({n}).raw()) % 64, 0u);
}

}  // namespace
}  // namespace cpc
