#include "engine/safetensors_file.h"

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/h5_file.h"

namespace cpc {

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    std::vector<int64_t> shape;
    for (int i = 0; i < t.rank(); ++i) shape.push_back(t.size(i));
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the reference writer does
  AtomicFile f(path);
  unsigned char len[8];
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
  f.write(len, sizeof len);
  f.write(h);
  for (const auto& [name, t] : tensors) {
    const std::vector<float> v = t.to_vector();  // little-endian host floats
    f.write(v.data(), v.size() * sizeof(float));
  }
  f.commit();
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  std::ifstream f(path, std::ios::binary);
  CPC_CHECK(f.good(), path, ": cannot open");
  unsigned char len[8];
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  CPC_CHECK(f.good() && n < (1u << 30), path, ": not a safetensors file (bad header length)");
  std::string h(n, '\0');
  f.read(h.data(), static_cast<std::streamsize>(n));
  const nlohmann::json header = nlohmann::json::parse(h);
  const std::streamoff base = static_cast<std::streamoff>(8 + n);
  std::map<std::string, Tensor> out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (metadata)
        for (const auto& [k, v] : info.items()) (*metadata)[k] = v.get<std::string>();
      continue;
    }
    CPC_CHECK(info["dtype"] == "F32", path, ": tensor '", name, "' has dtype ", info["dtype"].dump(), ", expected F32");
    std::vector<int64_t> shape = info["shape"].get<std::vector<int64_t>>();
    Shape s;
    switch (shape.size()) {
      case 0:
        s = Shape{};
        break;
      case 1:
        s = Shape{shape[0]};
        break;
      case 2:
        s = Shape{shape[0], shape[1]};
        break;
      case 3:
        s = Shape{shape[0], shape[1], shape[2]};
        break;
      case 4:
        s = Shape{shape[0], shape[1], shape[2], shape[3]};
        break;
      default:
        fail(path, ": tensor '", name, "' has rank ", shape.size(), " > 4");
    }
    Tensor t = Tensor::empty(s);
    const auto begin = info["data_offsets"][0].get<int64_t>(), end = info["data_offsets"][1].get<int64_t>();
    CPC_CHECK(end - begin == static_cast<int64_t>(t.nbytes()), path, ": tensor '", name, "' has ", end - begin,
              " bytes for shape ", s);
    f.seekg(base + begin);
    f.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    CPC_CHECK(f.good(), path, ": truncated data for '", name, "'");
    out[name] = t;
  }
  return out;
}

}  // namespace cpc
