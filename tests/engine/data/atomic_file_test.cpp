// Files are replaced whole or not at all: AtomicFile and H5File's in-memory create mode
// leave the previous file and no temporary file behind on any failure; checksums find
// a changed dataset. (Full disks through the command line: tests/tools/reliability_test.sh.)
#include "engine/data/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"

namespace cpc {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class AtomicFileTest : public ::testing::Test {
 protected:
  std::string dir = (fs::temp_directory_path() / ("cpc_atomic_" + std::to_string(::getpid()))).string();
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
  size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(dir), {})); }
};

TEST_F(AtomicFileTest, ReplacesOnCommitOnly) {
  const std::string p = dir + "/out.txt";
  write_file_atomically(p, "old");
  {
    AtomicFile f(p);
    f.write("new contents");
    EXPECT_EQ(read_all(p), "old");  // not yet
  }                                 // abandoned: no commit
  EXPECT_EQ(read_all(p), "old");
  EXPECT_EQ(entries(), 1u) << "a temporary file was left behind";
  AtomicFile f(p);
  f.write("new");
  f.commit();
  EXPECT_EQ(read_all(p), "new");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, MissingDirectoryNamesTheFileAndTheReason) {
  std::string msg;
  try {
    AtomicFile f(dir + "/no/such/dir/out.txt");
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find(dir + "/no/such/dir/out.txt: cannot create the temporary file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
}

TEST_F(AtomicFileTest, H5FileWritesNothingUntilCommitAndVerifies) {
  const std::string p = dir + "/t.h5";
  {
    H5File f(p, H5File::Mode::create);
    f.write("a/x", Tensor::from_vector({3}, {1.f, 2.f, 3.f}));
  }  // no commit: nothing on disk
  EXPECT_FALSE(fs::exists(p));
  EXPECT_EQ(entries(), 0u);
  {
    H5File f(p, H5File::Mode::create);
    f.write("a/x", Tensor::from_vector({3}, {1.f, 2.f, 3.f}));
    f.write_ints("n", {7, 8});
    f.commit();
  }
  H5File r(p, H5File::Mode::read);
  EXPECT_NO_THROW(r.verify());
  EXPECT_EQ(r.read_ints("n"), (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(r.attribute("a/x", "fnv1a64").size(), 16u);
}

TEST(Fnv1a64, KnownValues) {  // the published FNV-1a 64 test vectors
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
}

}  // namespace
}  // namespace cpc
