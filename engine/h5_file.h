#pragma once
// A small HDF5 reader/writer for named float tensors and string attributes: state
// dicts, checkpoints and the PyTorch reference cases. The serial HDF5 library is not
// thread-safe: every call here takes one process-wide lock.
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace cpc {

struct H5Array {  // a dataset read as double, whatever its stored type
  std::vector<int64_t> dims;
  std::vector<double> values;
  Shape shape() const;
};

class H5File {
 public:
  enum class Mode { read, create };
  H5File(const std::string& path, Mode mode);
  ~H5File();
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  bool has(const std::string& name) const;
  H5Array read(const std::string& name) const;
  Tensor read_tensor(const std::string& name) const;     // f32 on the CPU
  void write(const std::string& name, const Tensor& t);  // creates intermediate groups
  void write_ints(const std::string& name, const std::vector<int64_t>& values);
  void write_floats(const std::string& name, const std::vector<int64_t>& dims, const float* values);
  std::vector<int64_t> dims(const std::string& name) const;
  std::string type_class(const std::string& name) const;  // float | integer | string | other
  std::vector<int64_t> read_ints(const std::string& name) const;
  // The hyperslab [start, start + count) of a float dataset, converted to f32.
  void read_floats(const std::string& name, const std::vector<int64_t>& start, const std::vector<int64_t>& count,
                   float* out) const;
  std::string attribute(const std::string& object, const std::string& name) const;
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  // Full names of all datasets under a group ("" = root), recursively.
  std::vector<std::string> datasets(const std::string& group = "") const;
  // Immediate child groups of a group.
  std::vector<std::string> groups(const std::string& group = "") const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  long long id_ = -1;
  // Creates dataset `name` (and missing groups) and writes `data` (hid_t types).
  void write_dataset(const std::string& name, long long file_type, long long mem_type,
                     const std::vector<int64_t>& dims, const void* data);
};

// Writes named tensors to path atomically (temporary file, fsync, rename), so an
// existing file is never left half-written.
void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors);
std::map<std::string, Tensor> load_tensors(const std::string& path);
// fsyncs a completely written file `tmp` and renames it to `path` (atomic replace).
void save_tensors_finish(const std::string& tmp, const std::string& path);

}  // namespace cpc
