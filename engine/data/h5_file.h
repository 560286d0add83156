#pragma once
// A small HDF5 reader/writer for named float tensors and string attributes: state
// dicts, checkpoints and the PyTorch reference cases. The serial HDF5 library is not
// thread-safe: every call here takes one process-wide lock.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace cpc {

struct H5Array {  // a dataset read as double, whatever its stored type
  std::vector<int64_t> dims;
  std::vector<double> values;
  Shape shape() const;
};

// Mode::create builds the file in memory (HDF5's core driver): nothing touches the disk
// until commit(), which writes the whole image through an AtomicFile (temporary file,
// checked writes, fsync, rename). An H5File destroyed without commit() leaves nothing
// behind, and a full disk or any other write error leaves the previous file intact with
// a message that names the file and the OS reason. Every dataset written carries an
// FNV-1a checksum of its bytes (attribute "fnv1a64") and the root one over all of them
// ("content_fnv1a64"); verify() checks both.
class H5File {
 public:
  enum class Mode { read, create };
  // expected: what the file should be, for the message when it is not HDF5.
  H5File(const std::string& path, Mode mode, const std::string& expected = "");
  ~H5File();
  void commit();  // create mode: writes the file (once)
  // Reads every dataset that carries a checksum and compares; throws naming the dataset
  // (a damaged file), or the file when the datasets' combined checksum differs.
  void verify() const;
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
  bool has_attribute(const std::string& object, const std::string& name) const;
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  // Full names of all datasets under a group ("" = root), recursively.
  std::vector<std::string> datasets(const std::string& group = "") const;
  // Immediate child groups of a group.
  std::vector<std::string> groups(const std::string& group = "") const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  long long id_ = -1;
  bool writing_ = false;
  std::vector<std::pair<std::string, uint64_t>> checksums_;  // datasets written, in order
  // Creates dataset `name` (and missing groups) and writes `data` (hid_t types).
  void write_dataset(const std::string& name, long long file_type, long long mem_type,
                     const std::vector<int64_t>& dims, const void* data);
};

// Writes named tensors to path atomically (H5File::commit), so an existing file is
// never left half-written.
void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors);
std::map<std::string, Tensor> load_tensors(const std::string& path);
// FNV-1a, 64 bits, over bytes (continuing from `h`).
uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h = 0xcbf29ce484222325ULL);

}  // namespace cpc
