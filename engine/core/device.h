#pragma once
#include <cstdint>
#include <string>

namespace cpc {

// Storage types. The CPU backend computes in f32 only; bf16/f16 exist for the GPU
// backend's mixed precision and are rejected by CPU kernels with a clear error.
enum class DType : uint8_t { f32, bf16, f16 };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
  }
  return "?";
}

enum class DeviceKind : uint8_t { cpu, cuda };
constexpr int kNumDeviceKinds = 2;

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;

  static Device cpu() { return {DeviceKind::cpu, 0}; }
  static Device cuda(int i = 0) { return {DeviceKind::cuda, i}; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return kind == DeviceKind::cpu ? std::string("cpu") : "cuda:" + std::to_string(index); }
};

// Parses "cpu", "cuda", "cuda:1".
Device parse_device(const std::string& s);

}  // namespace cpc
