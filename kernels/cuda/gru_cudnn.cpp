#include "kernels/cuda/gru_cudnn.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/core/error.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/elementwise.h"

namespace cpc::cuda {

namespace {


constexpr size_t kAlign = 256;  // bytes; the weight space and the reserve space start at such addresses
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Where the four parameter tensors go in the packed weight space: n floats from
// src[src_off] to weight_space[dst_off] (float offsets).
enum Source { kWih = 0, kWhh = 1, kBih = 2, kBhh = 3 };
struct Segment {
  int src;
  int64_t src_off, dst_off, n;
};

constexpr const char* kGateName[3] = {"r", "z", "n"};

// The (rank, dims, strides) of a descriptor cuDNN filled in.
struct Desc3 {
  int nb = 0;
  int dims[3] = {0, 0, 0}, strides[3] = {0, 0, 0};
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  std::string str() const {
    std::string s = "(";
    for (int i = 0; i < std::min(nb, 3); ++i) s += cat(i ? ", " : "", dims[i]);
    s += ") strides (";
    for (int i = 0; i < std::min(nb, 3); ++i) s += cat(i ? ", " : "", strides[i]);
    return s + ")";
  }
};

Desc3 read_desc(cudnnTensorDescriptor_t t) {
  Desc3 d;
  CPC_CUDNN_CHECK(cudnnGetTensorNdDescriptor(t, 3, &d.type, &d.nb, d.dims, d.strides));
  return d;
}

// A (1, rows, cols) row-major fp32 block.
bool is_block(const Desc3& d, int rows, int cols) {
  return d.nb == 3 && d.type == CUDNN_DATA_FLOAT && d.dims[0] == 1 && d.dims[1] == rows && d.dims[2] == cols &&
         d.strides[2] == 1 && (rows == 1 || d.strides[1] == cols);
}

// Owns two tensor descriptors for the weight-parameter queries.
struct DescPair {
  cudnnTensorDescriptor_t m = nullptr, b = nullptr;
  DescPair() {
    CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&m));
    CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&b));
  }
  ~DescPair() {
    if (m) cudnnDestroyTensorDescriptor(m);
    if (b) cudnnDestroyTensorDescriptor(b);
  }
  DescPair(const DescPair&) = delete;
  DescPair& operator=(const DescPair&) = delete;
};

}  // namespace

bool gru_cudnn_from_env() {
  const char* v = std::getenv("CPC_CUDA_GRU");
  if (!v || std::strcmp(v, "cells") == 0) return false;
  if (std::strcmp(v, "cudnn") == 0) return true;
  // Read during static initialisation: warn rather than throw.
  std::fprintf(stderr, "cpc: CPC_CUDA_GRU='%s' is neither cells nor cudnn; using cells\n", v);
  return false;
}

static_assert(sizeof(int) == sizeof(int32_t), "cuDNN takes the host lengths as int and the device ones as int32_t");

struct CudnnGru::Entry {
  cudnnRNNDescriptor_t rnn = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  cudnnRNNDataDescriptor_t x = nullptr, y = nullptr;
  cudnnTensorDescriptor_t h = nullptr;
  std::vector<int> lens;        // host: B sequence lengths, all T
  int32_t* dev_lens = nullptr;  // device copy for the calls (never freed, see gru_cudnn.h)
  size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0;
  std::vector<Segment> segments;  // merged runs, see Segment
  int64_t reserve_floats = 0;     // slack + weight space (256-byte rounded) + cuDNN reserve
  ~Entry() {
    // Host-side objects only: safe at any time.
    if (rnn) cudnnDestroyRNNDescriptor(rnn);
    if (dropout) cudnnDestroyDropoutDescriptor(dropout);
    if (x) cudnnDestroyRNNDataDescriptor(x);
    if (y) cudnnDestroyRNNDataDescriptor(y);
    if (h) cudnnDestroyTensorDescriptor(h);
  }
};

CudnnGru::CudnnGru() = default;
CudnnGru::~CudnnGru() = default;

std::string CudnnGru::describe() const { return "cuDNN RNN v8 (CUDNN_RNN_ALGO_STANDARD, fp32)"; }

const CudnnGru::Entry& CudnnGru::entry(const CudaContext& ctx, const GruDims& d) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{d.B, d.T, d.Din, d.H, ctx.tf32};
  auto it = cache_.find(key);
  if (it != cache_.end()) return *it->second;
  for (int64_t v : {d.B, d.T, d.Din, d.H})
    CPC_CHECK(v >= 1 && fits_int(v), "gru on cuda (cudnn): dimension ", v, " of B, T, Din, H = ", d.B, ", ", d.T, ", ", d.Din,
              ", ", d.H, " must lie in [1, ", INT_MAX, "]");
  CPC_CHECK(ctx.dnn != nullptr, "gru on cuda (cudnn): no cuDNN handle");
  const int B = static_cast<int>(d.B), T = static_cast<int>(d.T), Din = static_cast<int>(d.Din),
            H = static_cast<int>(d.H);
  auto e = std::make_unique<Entry>();

  // No dropout: a single layer has none to apply; the descriptor is p = 0 without
  // states (no random state is initialised then).
  CPC_CUDNN_CHECK(cudnnCreateDropoutDescriptor(&e->dropout));
  CPC_CUDNN_CHECK(cudnnSetDropoutDescriptor(e->dropout, ctx.dnn, 0.f, nullptr, 0, 0));
  CPC_CUDNN_CHECK(cudnnCreateRNNDescriptor(&e->rnn));
  // FMA math: no TF32 tensor cores for fp32 data (cuDNN's default math allows them on sm_80+).
  CPC_CUDNN_CHECK(cudnnSetRNNDescriptor_v8(e->rnn, CUDNN_RNN_ALGO_STANDARD, CUDNN_GRU, CUDNN_RNN_DOUBLE_BIAS,
                                           CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT,
                                           ctx.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, Din, H,
                                           /*projSize=*/H, /*numLayers=*/1, e->dropout, CUDNN_RNN_PADDED_IO_ENABLED));

  e->lens.assign(static_cast<size_t>(B), T);
  CPC_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&e->x));
  CPC_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&e->y));
  CPC_CUDNN_CHECK(cudnnSetRNNDataDescriptor(e->x, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, T, B,
                                            Din, e->lens.data(), nullptr));
  CPC_CUDNN_CHECK(cudnnSetRNNDataDescriptor(e->y, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, T, B, H,
                                            e->lens.data(), nullptr));
  CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->h));
  const int hdims[3] = {1, B, H}, hstrides[3] = {B * H, H, 1};
  CPC_CUDNN_CHECK(cudnnSetTensorNdDescriptor(e->h, CUDNN_DATA_FLOAT, 3, hdims, hstrides));

  CPC_CUDNN_CHECK(cudnnGetRNNWeightSpaceSize(ctx.dnn, e->rnn, &e->weight_bytes));
  CPC_CUDNN_CHECK(
      cudnnGetRNNTempSpaceSizes(ctx.dnn, e->rnn, CUDNN_FWD_MODE_TRAINING, e->x, &e->work_bytes, &e->reserve_bytes));
  e->reserve_floats =
      static_cast<int64_t>((kAlign + align_up(e->weight_bytes) + e->reserve_bytes + sizeof(float) - 1) / sizeof(float));

  // Weight offsets: cuDNN computes the addresses inside a weight space it is given (a
  // scratch one here; nothing is read or written).
  {
    DeviceScratch probe = ctx.scratch(e->weight_bytes);
    const char* base = probe.get<char>();
    DescPair desc;
    std::vector<Segment> segs;
    for (int lin = 0; lin < 6; ++lin) {
      const int g = lin % 3;
      const bool input = lin < 3;
      const int cols = input ? Din : H;
      void *m_addr = nullptr, *b_addr = nullptr;
      CPC_CUDNN_CHECK(cudnnGetRNNWeightParams(ctx.dnn, e->rnn, 0, e->weight_bytes, probe.get(), lin, desc.m, &m_addr,
                                              desc.b, &b_addr));
      CPC_CHECK(m_addr != nullptr && b_addr != nullptr, "gru on cuda (cudnn): cuDNN gives no ",
                m_addr ? "bias" : "matrix", " for linLayerID ", lin, " (gate ", kGateName[g], ", ",
                input ? "input" : "recurrent", ")");
      const Desc3 md = read_desc(desc.m), bd = read_desc(desc.b);
      CPC_CHECK(is_block(md, H, cols), "gru on cuda (cudnn): cuDNN describes the ", input ? "input" : "recurrent",
                " matrix of gate ", kGateName[g], " (linLayerID ", lin, ") as ", md.str(), ", expected (1, ", H, ", ",
                cols, ") row-major fp32 (", input ? "H x Din" : "H x H", "); the weight mapping would be wrong");
      CPC_CHECK(is_block(bd, H, 1), "gru on cuda (cudnn): cuDNN describes the ", input ? "input" : "recurrent",
                " bias of gate ", kGateName[g], " (linLayerID ", lin, ") as ", bd.str(), ", expected (1, ", H,
                ", 1) fp32");
      const int64_t m_off = static_cast<const char*>(m_addr) - base, b_off = static_cast<const char*>(b_addr) - base;
      const int64_t m_n = static_cast<int64_t>(H) * cols;
      for (const auto& [off, n] : {std::pair<int64_t, int64_t>{m_off, m_n}, std::pair<int64_t, int64_t>{b_off, H}})
        CPC_CHECK(off >= 0 && off % static_cast<int64_t>(sizeof(float)) == 0 &&
                      off + n * static_cast<int64_t>(sizeof(float)) <= static_cast<int64_t>(e->weight_bytes),
                  "gru on cuda (cudnn): cuDNN places linLayerID ", lin, " at byte ", off,
                  ", outside the weight space of ", e->weight_bytes, " bytes or misaligned");
      segs.push_back({input ? kWih : kWhh, g * m_n, m_off / 4, m_n});
      segs.push_back({input ? kBih : kBhh, static_cast<int64_t>(g) * H, b_off / 4, H});
    }
    std::sort(segs.begin(), segs.end(), [](const Segment& a, const Segment& b) {
      return a.src != b.src ? a.src < b.src : a.src_off < b.src_off;
    });
    for (const Segment& s : segs) {
      Segment* last = e->segments.empty() ? nullptr : &e->segments.back();
      if (last && last->src == s.src && last->src_off + last->n == s.src_off && last->dst_off + last->n == s.dst_off)
        last->n += s.n;
      else
        e->segments.push_back(s);
    }
  }

  // The sequence lengths on the device (cudnnRNNForward and the backward calls read them there).
  e->dev_lens = static_cast<int32_t*>(ctx.alloc->allocate(sizeof(int32_t) * e->lens.size(), ctx.stream));
  CPC_CUDA_CHECK(cudaMemcpyAsync(e->dev_lens, e->lens.data(), sizeof(int32_t) * e->lens.size(), cudaMemcpyHostToDevice,
                                 ctx.stream));
  // The host array must outlive the copy; it lives in the entry, but a pageable source
  // is copied before cudaMemcpyAsync returns anyway.
  peak_workspace_ = std::max(peak_workspace_, e->work_bytes);
  const Entry& ref = *e;
  cache_.emplace(key, std::move(e));
  return ref;
}

int64_t CudnnGru::reserve_floats(const CudaContext& ctx, const GruDims& d) { return entry(ctx, d).reserve_floats; }

namespace {

// The weight space and cuDNN's reserve space inside the reserve tensor.
struct Regions {
  float* weights;
  void* reserve;
};
Regions regions(float* reserve, size_t weight_bytes) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(reserve);
  char* base = reinterpret_cast<char*>((p + kAlign - 1) / kAlign * kAlign);
  return {reinterpret_cast<float*>(base), base + align_up(weight_bytes)};
}

}  // namespace

void CudnnGru::forward(const CudaContext& ctx, const float* x, const float* h0, const float* w_ih, const float* w_hh,
                       const float* b_ih, const float* b_hh, const GruDims& d, float* y, float* reserve) {
  const Entry& e = entry(ctx, d);
  const Regions r = regions(reserve, e.weight_bytes);
  const float* src[4] = {w_ih, w_hh, b_ih, b_hh};
  for (const Segment& s : e.segments)
    CPC_CUDA_CHECK(cudaMemcpyAsync(r.weights + s.dst_off, src[s.src] + s.src_off, sizeof(float) * s.n,
                                   cudaMemcpyDeviceToDevice, ctx.stream));
  DeviceScratch work = ctx.scratch(e.work_bytes), hy = ctx.scratch(sizeof(float) * d.B * d.H);
  CPC_CUDNN_CHECK(cudnnRNNForward(ctx.dnn, e.rnn, CUDNN_FWD_MODE_TRAINING, e.dev_lens, e.x, x, e.y, y, e.h, h0,
                                  hy.get(), nullptr, nullptr, nullptr, e.weight_bytes, r.weights, e.work_bytes,
                                  work.get(), e.reserve_bytes, r.reserve));
}

void CudnnGru::backward(const CudaContext& ctx, const float* x, const float* h0, const float* y, float* reserve,
                        const float* dy, const float* dh_n, const GruDims& d, float* dx, float* dh0, float* dw_ih,
                        float* dw_hh, float* db_ih, float* db_hh) {
  const bool want_weights = dw_ih || dw_hh || db_ih || db_hh;
  if (!dx && !dh0 && !want_weights) return;
  const Entry& e = entry(ctx, d);
  const Regions r = regions(reserve, e.weight_bytes);
  const int64_t nx = d.B * d.T * d.Din, ny = d.B * d.T * d.H, nh = d.B * d.H;
  DeviceScratch work = ctx.scratch(e.work_bytes);
  DeviceScratch dy_zero = ctx.scratch(dy ? 0 : sizeof(float) * ny);
  if (!dy) {
    CPC_CUDA_CHECK(cudaMemsetAsync(dy_zero.get(), 0, sizeof(float) * ny, ctx.stream));
    dy = dy_zero.get<float>();
  }
  // BackwardData first: it leaves in the reserve space what BackwardWeights needs.
  DeviceScratch dx_s = ctx.scratch(sizeof(float) * nx), dhx_s = ctx.scratch(sizeof(float) * nh);
  CPC_CUDNN_CHECK(cudnnRNNBackwardData_v8(ctx.dnn, e.rnn, e.dev_lens, e.y, y, dy, e.x, dx_s.get(), e.h, h0, dh_n,
                                          dhx_s.get(), nullptr, nullptr, nullptr, nullptr, e.weight_bytes, r.weights,
                                          e.work_bytes, work.get(), e.reserve_bytes, r.reserve));
  if (dx) CPC_CUDA_CHECK(launch_axpy(1.f, dx_s.get<float>(), dx, nx, ctx.stream));
  if (dh0) CPC_CUDA_CHECK(launch_axpy(1.f, dhx_s.get<float>(), dh0, nh, ctx.stream));
  if (!want_weights) return;
  DeviceScratch dw = ctx.scratch(e.weight_bytes);
  CPC_CUDA_CHECK(cudaMemsetAsync(dw.get(), 0, e.weight_bytes, ctx.stream));
  CPC_CUDNN_CHECK(cudnnRNNBackwardWeights_v8(ctx.dnn, e.rnn, CUDNN_WGRAD_MODE_ADD, e.dev_lens, e.x, x, e.h, h0, e.y, y,
                                             e.weight_bytes, dw.get(), e.work_bytes, work.get(), e.reserve_bytes,
                                             r.reserve));
  float* dst[4] = {dw_ih, dw_hh, db_ih, db_hh};
  for (const Segment& s : e.segments)
    if (dst[s.src])
      CPC_CUDA_CHECK(launch_axpy(1.f, dw.get<float>() + s.dst_off, dst[s.src] + s.src_off, s.n, ctx.stream));
}

}  // namespace cpc::cuda
