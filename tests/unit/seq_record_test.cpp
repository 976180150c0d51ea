#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "daemon/history/seq_record.h"

using namespace lpd::daemon;

namespace {

std::string temp_dir() {
  char dir[] = "/tmp/lpd-seq-test-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  return dir;
}

std::string contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("the seq record is one fixed-size JSON line, whatever the number", "[seq_record]") {
  for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{65536}, UINT64_MAX}) {
    const std::string line = SeqRecord::format(n);
    CHECK(line.size() == SeqRecord::kBytes);
    CHECK(line.back() == '\n');
    CHECK(nlohmann::json::parse(line) == nlohmann::json{{"next_block", n}});
  }
}

TEST_CASE("the seq record gets its size at open and is then overwritten in place", "[seq_record]") {
  const std::string path = temp_dir() + "/seq.json";
  SeqRecord record;
  REQUIRE(record.open(path, 7) == "");
  CHECK(contents(path) == SeqRecord::format(7));
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);
  REQUIRE(record.write(131073) == "");
  CHECK(nlohmann::json::parse(contents(path))["next_block"] == 131073);
  struct stat after {};
  REQUIRE(::stat(path.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);  // the same file: no new one, no rename
  CHECK(after.st_size == static_cast<off_t>(SeqRecord::kBytes));

  // A record an older lpd wrote (shorter, or longer): read as it was until
  // the first write, which leaves exactly the new line.
  { std::ofstream(path, std::ios::trunc) << "{\"next_block\":5}" << std::string(200, ' ') << "\n"; }
  SeqRecord reopened;
  REQUIRE(reopened.open(path, 9) == "");
  CHECK(contents(path) == SeqRecord::format(9));
}

TEST_CASE("the seq record is never written through a link or into a FIFO", "[seq_record]") {
  const std::string dir = temp_dir();
  const std::string target = dir + "/elsewhere";
  { std::ofstream(target) << "precious"; }
  REQUIRE(::symlink(target.c_str(), (dir + "/seq.json").c_str()) == 0);
  SeqRecord linked;
  CHECK(linked.open(dir + "/seq.json", 1) != "");
  CHECK(linked.write(2) != "");
  CHECK(contents(target) == "precious");

  REQUIRE(::mkfifo((dir + "/fifo.json").c_str(), 0600) == 0);
  SeqRecord fifo;  // opening must not block, and nothing is written
  CHECK(fifo.open(dir + "/fifo.json", 1) == "not a regular file");
  CHECK(fifo.write(2) == "not a regular file");
}
