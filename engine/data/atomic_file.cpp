#include "engine/data/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/core/error.h"

namespace cpc {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_io("cannot create the temporary file", errno);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(tmp_.c_str());
}

void AtomicFile::fail_io(const char* what, int err) {
  const std::string tmp = tmp_;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp.c_str());
  fail(path_, ": ", what, " ", tmp, " (", std::strerror(err), "); ",
       std::filesystem::exists(path_) ? "the existing file is unchanged" : "nothing was written");
}

void AtomicFile::write(const void* data, size_t bytes) {
  CPC_CHECK(fd_ >= 0 && !committed_, path_, ": write after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_io("cannot write", n < 0 ? errno : ENOSPC);
    p += n, bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  CPC_CHECK(fd_ >= 0 && !committed_, path_, ": commit after commit or failure");
  if (::fsync(fd_) != 0) fail_io("cannot fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_io("cannot close", errno);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail_io("cannot rename into place", errno);
  committed_ = true;
  // The rename itself reaches the disk with the directory.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

}  // namespace cpc
