#pragma once
// Replaces a file so that the previous version survives any failure. The bytes go to a
// temporary file beside the target (PATH.tmp-PID); commit() checks the close, fsyncs,
// renames it over PATH and fsyncs the directory. Any failed write, and a destructor
// reached before commit() (an exception), removes the temporary file and leaves PATH as
// it was. Errors name the file and the OS reason ("No space left on device").
#include <cstddef>
#include <string>

namespace cpc {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  [[noreturn]] void fail_io(const char* what, int err);
};

// The whole of `contents` written to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace cpc
