#include "engine/data/h5_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <mutex>

#include "engine/data/atomic_file.h"
#include "engine/core/error.h"

namespace cpc {

namespace {

std::mutex& h5_lock() {
  static std::mutex m;
  return m;
}

// Silences HDF5's own error stack printing once; we report errors ourselves.
void quiet() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

struct Handle {  // closes any HDF5 id with the right function
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

herr_t collect(hid_t, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

Shape H5Array::shape() const {
  CPC_CHECK(dims.size() <= kMaxRank, "HDF5 dataset of rank ", dims.size(), " exceeds ", kMaxRank);
  Shape s;
  switch (dims.size()) {
    case 0:
      s = Shape{};
      break;
    case 1:
      s = Shape{dims[0]};
      break;
    case 2:
      s = Shape{dims[0], dims[1]};
      break;
    case 3:
      s = Shape{dims[0], dims[1], dims[2]};
      break;
    default:
      s = Shape{dims[0], dims[1], dims[2], dims[3]};
      break;
  }
  return s;
}

H5File::H5File(const std::string& path, Mode mode, const std::string& expected) : path_(path) {
  std::lock_guard<std::mutex> g(h5_lock());
  quiet();
  if (mode == Mode::read) {
    CPC_CHECK(std::filesystem::exists(path), path, ": no such file");
    std::error_code fs_ec;  // a path that cannot even be stat'ed (too long, no access) is not a file
    CPC_CHECK(!std::filesystem::is_directory(path, fs_ec), path, ": is a directory, not a file");
    CPC_CHECK(H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file",
              expected.empty() ? "" : " (expected " + expected + ")");
    id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  } else {  // in memory until commit(): libhdf5 never writes to the disk itself
    Handle fapl{H5Pcreate(H5P_FILE_ACCESS), H5Pclose};
    H5Pset_fapl_core(fapl.id, 1 << 20, /*backing_store=*/0);
    id_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id);
    writing_ = true;
  }
  CPC_CHECK(id_ >= 0, path, ": cannot ", mode == Mode::read ? "open" : "create", " the HDF5 file");
}

H5File::~H5File() {
  std::lock_guard<std::mutex> g(h5_lock());
  if (id_ >= 0) H5Fclose(id_);
}

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

namespace {
std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}
// Over (name, checksum) pairs sorted by name: the order datasets are listed in, not the
// order they were written in.
uint64_t combined(std::vector<std::pair<std::string, uint64_t>> sums) {
  std::sort(sums.begin(), sums.end());
  uint64_t h = fnv1a64(nullptr, 0);
  for (const auto& [name, sum] : sums) {
    h = fnv1a64(name.data(), name.size(), h);
    h = fnv1a64(&sum, sizeof sum, h);
  }
  return h;
}
}  // namespace

void H5File::commit() {
  CPC_CHECK(writing_ && id_ >= 0, path_, ": commit on a file not open for writing");
  set_attribute("", "content_fnv1a64", hex64(combined(checksums_)));
  std::vector<char> image;
  {
    std::lock_guard<std::mutex> g(h5_lock());
    CPC_CHECK(H5Fflush(id_, H5F_SCOPE_GLOBAL) >= 0, path_, ": cannot finish the HDF5 image in memory");
    const ssize_t n = H5Fget_file_image(id_, nullptr, 0);
    CPC_CHECK(n > 0, path_, ": cannot size the HDF5 image");
    image.resize(static_cast<size_t>(n));
    CPC_CHECK(H5Fget_file_image(id_, image.data(), image.size()) == n, path_, ": cannot copy the HDF5 image");
    H5Fclose(id_);  // frees the in-memory file before the disk write
    id_ = -1;
    writing_ = false;
  }
  AtomicFile out(path_);
  out.write(image.data(), image.size());
  out.commit();
}

void H5File::verify() const {
  std::vector<std::pair<std::string, uint64_t>> sums;
  for (const std::string& name : datasets()) {
    if (!has_attribute(name, "fnv1a64")) continue;  // written before checksums
    const std::string want = attribute(name, "fnv1a64");
    std::lock_guard<std::mutex> g(h5_lock());
    Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
    CPC_CHECK(ds.id >= 0, path_, ": dataset '", name, "' cannot be opened (the file is damaged)");
    Handle type{H5Dget_type(ds.id), H5Tclose};
    Handle native{H5Tget_native_type(type.id, H5T_DIR_ASCEND), H5Tclose};
    Handle space{H5Dget_space(ds.id), H5Sclose};
    const hssize_t n = H5Sget_simple_extent_npoints(space.id);
    CPC_CHECK(n >= 0 && native.id >= 0, path_, ": dataset '", name, "' cannot be read (the file is damaged)");
    std::vector<char> buf(static_cast<size_t>(n) * H5Tget_size(native.id));
    CPC_CHECK(buf.empty() || H5Dread(ds.id, native.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0, path_,
              ": dataset '", name, "' cannot be read (the file is damaged)");
    const uint64_t got = fnv1a64(buf.data(), buf.size());
    CPC_CHECK(hex64(got) == want, path_, ": dataset '", name, "' is damaged: its checksum is ", hex64(got),
              ", the file recorded ", want, " when it was written");
    sums.emplace_back(name, got);
  }
  if (!has_attribute("", "content_fnv1a64")) return;  // written before checksums
  const std::string want = attribute("", "content_fnv1a64");
  CPC_CHECK(hex64(combined(sums)) == want, path_, ": the file is damaged: its datasets' combined checksum is ",
            hex64(combined(sums)), ", the file recorded ", want, " (a dataset was added, removed or renamed)");
}

bool H5File::has(const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  // Check each path component so that a missing group is not an error.
  size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    const std::string part = name.substr(0, pos);
    if (H5Lexists(id_, part.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

H5Array H5File::read(const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CPC_CHECK(ds.id >= 0, path_, ": dataset '", name, "' not found");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  H5Array a;
  size_t n = 1;
  for (hsize_t d : dims) {
    a.dims.push_back(static_cast<int64_t>(d));
    n *= d;
  }
  a.values.resize(n);
  if (n)
    CPC_CHECK(H5Dread(ds.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.values.data()) >= 0, path_,
              ": cannot read dataset '", name, "' as numbers");
  return a;
}

Tensor H5File::read_tensor(const std::string& name) const {
  const H5Array a = read(name);
  std::vector<float> v(a.values.begin(), a.values.end());
  return Tensor::from_vector(a.shape(), v);
}

void H5File::write_dataset(const std::string& name, long long file_type, long long mem_type,
                           const std::vector<int64_t>& dims, const void* data) {
  std::lock_guard<std::mutex> g(h5_lock());
  std::vector<hsize_t> d(dims.begin(), dims.end());
  Handle space{d.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr),
               H5Sclose};
  Handle lcpl{H5Pcreate(H5P_LINK_CREATE), H5Pclose};
  H5Pset_create_intermediate_group(lcpl.id, 1);
  Handle ds{H5Dcreate2(id_, name.c_str(), file_type, space.id, lcpl.id, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
  CPC_CHECK(ds.id >= 0, path_, ": cannot create dataset '", name, "'");
  CPC_CHECK(H5Dwrite(ds.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, path_, ": cannot write dataset '",
            name, "'");
  // The checksum of the bytes as stored (little-endian f32 / i64, this host's layout).
  size_t n = H5Tget_size(static_cast<hid_t>(mem_type));
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  const uint64_t sum = fnv1a64(data, n);
  checksums_.emplace_back(name.substr(name.find_first_not_of('/')), sum);  // as datasets() lists it
  Handle attr_type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(attr_type.id, 17);
  Handle attr_space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle attr{H5Acreate2(ds.id, "fnv1a64", attr_type.id, attr_space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  CPC_CHECK(attr.id >= 0 && H5Awrite(attr.id, attr_type.id, hex64(sum).c_str()) >= 0, path_,
            ": cannot write the checksum of '", name, "'");
}

void H5File::write(const std::string& name, const Tensor& t) {
  const std::vector<float> host = t.to_vector();
  std::vector<int64_t> dims;
  for (int i = 0; i < t.rank(); ++i) dims.push_back(t.size(i));
  write_dataset(name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, host.data());
}

void H5File::write_ints(const std::string& name, const std::vector<int64_t>& values) {
  write_dataset(name, H5T_STD_I64LE, H5T_NATIVE_INT64, {static_cast<int64_t>(values.size())}, values.data());
}

void H5File::write_floats(const std::string& name, const std::vector<int64_t>& dims, const float* values) {
  write_dataset(name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, values);
}

std::string H5File::type_class(const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CPC_CHECK(ds.id >= 0, path_, ": dataset '", name, "' not found");
  Handle type{H5Dget_type(ds.id), H5Tclose};
  switch (H5Tget_class(type.id)) {
    case H5T_FLOAT:
      return "float";
    case H5T_INTEGER:
      return "integer";
    case H5T_STRING:
      return "string";
    default:
      return "other";
  }
}

std::vector<int64_t> H5File::dims(const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CPC_CHECK(ds.id >= 0, path_, ": dataset '", name, "' not found");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> d(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id, d.data(), nullptr);
  return std::vector<int64_t>(d.begin(), d.end());
}

std::vector<int64_t> H5File::read_ints(const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CPC_CHECK(ds.id >= 0, path_, ": dataset '", name, "' not found");
  Handle type{H5Dget_type(ds.id), H5Tclose};
  CPC_CHECK(H5Tget_class(type.id) == H5T_INTEGER, path_, ": dataset '", name, "' must hold integers");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  std::vector<int64_t> out(static_cast<size_t>(n));
  if (n)
    CPC_CHECK(H5Dread(ds.id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0, path_,
              ": cannot read dataset '", name, "'");
  return out;
}

void H5File::read_floats(const std::string& name, const std::vector<int64_t>& start, const std::vector<int64_t>& count,
                         float* out) const {
  std::lock_guard<std::mutex> g(h5_lock());
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  CPC_CHECK(ds.id >= 0, path_, ": dataset '", name, "' not found");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  std::vector<hsize_t> st(start.begin(), start.end()), ct(count.begin(), count.end());
  CPC_CHECK(H5Sselect_hyperslab(space.id, H5S_SELECT_SET, st.data(), nullptr, ct.data(), nullptr) >= 0, path_,
            ": bad selection in '", name, "'");
  Handle mem{H5Screate_simple(static_cast<int>(ct.size()), ct.data(), nullptr), H5Sclose};
  CPC_CHECK(H5Dread(ds.id, H5T_NATIVE_FLOAT, mem.id, space.id, H5P_DEFAULT, out) >= 0, path_,
            ": cannot read a window of '", name, "'");
}

std::string H5File::attribute(const std::string& object, const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  const char* obj = object.empty() ? "/" : object.c_str();
  CPC_CHECK(H5Aexists_by_name(id_, obj, name.c_str(), H5P_DEFAULT) > 0, path_, ": attribute '", name, "' of '", obj,
            "' not found");
  Handle attr{H5Aopen_by_name(id_, obj, name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(attr.id), H5Tclose};
  CPC_CHECK(H5Tget_class(type.id) == H5T_STRING, path_, ": attribute '", name, "' of '", obj, "' is not a string");
  std::string out;
  if (H5Tis_variable_str(type.id) > 0) {
    Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    char* s = nullptr;
    CPC_CHECK(H5Aread(attr.id, mem.id, &s) >= 0, path_, ": cannot read attribute '", name, "'");
    out = s ? s : "";
    H5free_memory(s);
  } else {
    const size_t n = H5Tget_size(type.id);
    std::vector<char> buf(n + 1, 0);
    CPC_CHECK(H5Aread(attr.id, type.id, buf.data()) >= 0, path_, ": cannot read attribute '", name, "'");
    out = std::string(buf.data());
  }
  return out;
}

bool H5File::has_attribute(const std::string& object, const std::string& name) const {
  std::lock_guard<std::mutex> g(h5_lock());
  return H5Aexists_by_name(id_, object.empty() ? "/" : object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

void H5File::set_attribute(const std::string& object, const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> g(h5_lock());
  const char* obj = object.empty() ? "/" : object.c_str();
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, value.size() + 1);
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  if (H5Aexists_by_name(id_, obj, name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(id_, obj, name.c_str(), H5P_DEFAULT);
  Handle attr{H5Acreate_by_name(id_, obj, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose};
  CPC_CHECK(attr.id >= 0, path_, ": cannot create attribute '", name, "' on '", obj, "'");
  H5Awrite(attr.id, type.id, value.c_str());
}

std::vector<std::string> H5File::datasets(const std::string& group) const {
  std::lock_guard<std::mutex> g(h5_lock());
  std::vector<std::string> names;
  const char* grp = group.empty() ? "/" : group.c_str();
  CPC_CHECK(H5Ovisit_by_name2(id_, grp, H5_INDEX_NAME, H5_ITER_INC, collect, &names, H5O_INFO_BASIC, H5P_DEFAULT) >= 0,
            path_, ": cannot list group '", grp, "'");
  if (!group.empty())
    for (std::string& n : names) n = group + "/" + n;
  return names;
}

std::vector<std::string> H5File::groups(const std::string& group) const {
  std::lock_guard<std::mutex> g(h5_lock());
  std::vector<std::string> out;
  const char* grp = group.empty() ? "/" : group.c_str();
  Handle gid{H5Gopen2(id_, grp, H5P_DEFAULT), H5Gclose};
  CPC_CHECK(gid.id >= 0, path_, ": group '", grp, "' not found");
  H5G_info_t info;
  H5Gget_info(gid.id, &info);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char name[1024];
    H5Lget_name_by_idx(gid.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name), H5P_DEFAULT);
    H5O_info_t oi;
    if (H5Oget_info_by_name2(gid.id, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && oi.type == H5O_TYPE_GROUP)
      out.push_back(name);
  }
  return out;
}

void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  H5File f(path, H5File::Mode::create);
  for (const auto& [name, t] : tensors) f.write(name, t);
  f.commit();
}

std::map<std::string, Tensor> load_tensors(const std::string& path) {
  H5File f(path, H5File::Mode::read);
  std::map<std::string, Tensor> out;
  for (const std::string& name : f.datasets()) out[name] = f.read_tensor(name);
  return out;
}

}  // namespace cpc
