// After the first steps, a training step performs no heap allocation: the arena,
// tape and kernel workspaces reach their peak and are reused. This binary
// interposes malloc and friends (glibc's __libc_* entry points do the work), so
// every allocation counts: ours, the standard library's, OpenBLAS's and OpenMP's.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>

#include "engine/ops.h"
#include "engine/optimizer.h"
#include "layers/activations.h"
#include "layers/batch_norm1d.h"
#include "layers/conv1d.h"
#include "layers/gru.h"
#include "layers/linear.h"
#include "layers/residual_block1d.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
inline void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t s) {
  count();
  return __libc_calloc(n, s);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* aligned_alloc(size_t a, size_t n) {
  count();
  return __libc_memalign(a, n);
}
void* memalign(size_t a, size_t n) {
  count();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  count();
  *out = __libc_memalign(a, n);
  return *out ? 0 : 12;  // ENOMEM
}
}

namespace cpc {
namespace {

// A model with every layer kind a CPC step uses: strided convs with BatchNorm, a
// residual block with channel norm, GELU, dropout, a 2-layer GRU, linear heads.
class StepModel : public Module {
 public:
  explicit StepModel(Generator& gen) {
    conv = register_module("conv", std::make_unique<Conv1d>(2, 16, 5, Conv1dGeometry{2, 2, 1}, false, gen));
    bn = register_module("bn", std::make_unique<BatchNorm1d>(16));
    block = register_module("block", std::make_unique<ResidualBlock1d>(16, 24, 3, 2, NormKind::channel, gen));
    drop = register_module("drop", std::make_unique<Dropout>(0.1f, 3));
    gru = register_module("gru", std::make_unique<GRU>(24, 32, 2, gen));
    head = register_module("head", std::make_unique<Linear>(32, 24, true, gen));
  }
  Var* loss(Var* x, const Tensor& target) {
    Var* h = block->forward(ops::relu(bn->forward(conv->forward(x))));
    Var* z = ops::transpose_last2(drop->forward(ops::gelu(h)));  // (B, T, 24)
    Var* c = gru->forward(z).output;
    Var* pred = head->forward(ops::select(c, 1, 3));
    return ops::mse_loss(ops::add(pred, ops::max_pool(z, 1)), target);
  }
  Conv1d* conv;
  BatchNorm1d* bn;
  ResidualBlock1d* block;
  Dropout* drop;
  GRU* gru;
  Linear* head;
};

TEST(AllocationFreeStep, SteadyStateTrainingStepAllocatesNothing) {
  Generator gen(1);
  StepModel model(gen);
  const std::vector<Parameter*> params = model.parameters();
  AdamOptions o;
  o.weight_decay = 0.01f;
  Adam opt(params, o, /*decoupled=*/true);
  const Tensor x = gen.normal_tensor({4, 2, 64}, 0, 1), target = gen.normal_tensor({4, 24}, 0, 1);
  Tape tape;
  TapeScope scope(tape);
  auto step = [&] {
    tape.reset();
    opt.zero_grad();
    Var* l = model.loss(tape.var(x), target);
    tape.backward(l);
    clip_grad_norm(params, 1.0);
    opt.step();
    return l->value.f32()[0];
  };
  const float first = step();
  step();
  g_allocations = 0;
  g_counting = true;
  const float third = step();
  const float fourth = step();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0) << "heap allocations in two steady-state steps";
  EXPECT_LT(fourth, first);  // it is really training
  EXPECT_TRUE(std::isfinite(third));
}

TEST(AllocationFreeStep, TheCounterSeesAllocations) {
  g_allocations = 0;
  g_counting = true;
  std::vector<int>* v = new std::vector<int>(100);
  void* p = std::malloc(10);
  g_counting = false;
  delete v;
  std::free(p);
  EXPECT_GE(g_allocations.load(), 3);
}

}  // namespace
}  // namespace cpc
