#include "engine/data/safetensors_file.h"

#include <cstdint>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/data/atomic_file.h"
#include "engine/core/error.h"
#include "engine/data/h5_file.h"

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
  using json = nlohmann::json;
  std::ifstream f(path, std::ios::binary);
  std::error_code fs_ec;  // a path that cannot even be stat'ed (too long, no access) is not a file
  CPC_CHECK(f.good() && !std::filesystem::is_directory(path, fs_ec), path, ": cannot open");
  const uint64_t file_size = std::filesystem::file_size(path, fs_ec);
  CPC_CHECK(!fs_ec, path, ": cannot read its size (", fs_ec.message(), ")");
  unsigned char len[8];
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  CPC_CHECK(f.good() && n <= file_size - 8, path, ": not a safetensors file (a header of ", n, " bytes in a file of ",
            file_size, ")");
  std::string h(n, '\0');
  f.read(h.data(), static_cast<std::streamsize>(n));
  json header;
  try {
    header = json::parse(h);
  } catch (const json::exception& e) {
    fail(path, ": not a safetensors file (its header is not JSON: ", e.what(), ")");
  }
  CPC_CHECK(header.is_object(), path, ": not a safetensors file (its header is not a JSON object)");
  const uint64_t data_bytes = file_size - 8 - n;
  const std::streamoff base = static_cast<std::streamoff>(8 + n);
  std::map<std::string, Tensor> out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      CPC_CHECK(info.is_object(), path, ": __metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        CPC_CHECK(v.is_string(), path, ": __metadata__ '", k, "' is not a string");
        if (metadata) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    CPC_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") && info.contains("data_offsets"),
              where, ": expected {dtype, shape, data_offsets}");
    CPC_CHECK(info["dtype"] == "F32", where, " has dtype ", info["dtype"].dump(-1, ' ', false, json::error_handler_t::replace),
              ", expected F32");
    const json& js = info["shape"];
    CPC_CHECK(js.is_array() && js.size() <= 4, where, ": shape must be an array of at most 4 sizes");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const json& d : js) {
      CPC_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= data_bytes / 4, where, ": bad size ",
                d.dump(-1, ' ', false, json::error_handler_t::replace), " in its shape");
      shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
      CPC_CHECK(numel <= data_bytes / 4, where, ": its shape holds more values than the file's ", data_bytes,
                " bytes of data");
    }
    const json& off = info["data_offsets"];
    CPC_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), where,
              ": data_offsets must be [begin, end]");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    CPC_CHECK(begin <= end && end <= data_bytes && end - begin == numel * 4, where, ": data_offsets [", begin, ", ",
              end, "] do not hold its ", numel, " float32 values within the ", data_bytes, " bytes of data");
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
      default:
        s = Shape{shape[0], shape[1], shape[2], shape[3]};
        break;
    }
    Tensor t = Tensor::empty(s);
    f.seekg(base + static_cast<std::streamoff>(begin));
    f.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    CPC_CHECK(f.good(), where, ": truncated data");
    out[name] = t;
  }
  return out;
}

}  // namespace cpc
