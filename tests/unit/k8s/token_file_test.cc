// TokenFile: re-read on an atomic symlink swap (as the kubelet rotates), on a rewrite, and
// after max_age; the last good token stays while the file is missing or empty.

#include "k8s/api_client.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using namespace kesm::k8s;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using SteadyTime = std::chrono::steady_clock;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/kesm-token-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name) << text;
  }
  std::string path;
};

// The kubelet's layout: token -> ..data/token, ..data -> ..<timestamp> (swapped by rename).
void rotate(const TempDir& dir, const std::string& version, const std::string& token) {
  fs::create_directory(dir.path + "/.." + version);
  dir.write(".." + version + "/token", token);
  fs::create_directory_symlink(".." + version, dir.path + "/..data_tmp");
  fs::rename(dir.path + "/..data_tmp", dir.path + "/..data");
}

} // namespace

TEST_CASE("token: a symlink swap is seen at the next call", "[unit]") {
  TempDir dir;
  rotate(dir, "v1", "first-token\n");
  fs::create_symlink("..data/token", dir.path + "/token");
  TokenFile token(dir.path + "/token", 3600s);
  const auto now = SteadyTime::now();
  CHECK(token.current(now) == "first-token");
  // Same size, maybe the same mtime second: the inode differs.
  rotate(dir, "v2", "other-token\n");
  CHECK(token.current(now) == "other-token");
  CHECK(token.error().empty());
}

TEST_CASE("token: a rewrite in place is seen, a missing file keeps the last token", "[unit]") {
  TempDir dir;
  dir.write("token", "aaaa");
  TokenFile token(dir.path + "/token", 3600s);
  const auto now = SteadyTime::now();
  CHECK(token.current(now) == "aaaa");
  dir.write("token", "bbbbbb"); // another size
  CHECK(token.current(now) == "bbbbbb");
  fs::remove(dir.path + "/token");
  CHECK(token.current(now) == "bbbbbb");
  CHECK_THAT(token.error(), Catch::Contains("cannot stat"));
  dir.write("token", "");
  CHECK(token.current(now + 3601s) == "bbbbbb");
  CHECK_THAT(token.error(), Catch::Contains("is empty"));
  dir.write("token", "cccccc");
  CHECK(token.current(now + 3602s) == "cccccc");
  CHECK(token.error().empty());
}

TEST_CASE("token: max_age re-reads a file that looks unchanged, reload says if it changed",
          "[unit]") {
  TempDir dir;
  dir.write("token", "aaaa");
  TokenFile token(dir.path + "/token", 60s);
  const auto now = SteadyTime::now();
  CHECK(token.current(now) == "aaaa");
  // Same size, and the mtime set back: only age or a reload can see it.
  const auto mtime = fs::last_write_time(dir.path + "/token");
  dir.write("token", "bbbb");
  fs::last_write_time(dir.path + "/token", mtime);
  CHECK(token.current(now + 30s) == "aaaa");
  CHECK(token.current(now + 61s) == "bbbb");
  dir.write("token", "cccc");
  fs::last_write_time(dir.path + "/token", mtime);
  CHECK(token.reload(now + 62s));
  CHECK(token.current(now + 62s) == "cccc");
  CHECK_FALSE(token.reload(now + 63s));
}
