// h14fixA (issue 14, finding 1): failure messages read the log's real end.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include "daemon/logs/log_file.h"

using namespace lpd::daemon;

namespace {
struct LastLinesLog {
  std::string path;
  explicit LastLinesLog(const std::string& text) {
    char name[] = "/tmp/lpd-last-lines-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << text;
  }
  ~LastLinesLog() { std::remove(path.c_str()); }
};
}  // namespace

TEST_CASE("last_log_lines gives the last lines, an unterminated one included") {
  LastLinesLog log("one\ntwo\nthree\nalmost ready");
  CHECK(last_log_lines(log.path, 2, 4096) == "three\nalmost ready");
  CHECK(last_log_lines(log.path, 10, 4096) == "one\ntwo\nthree\nalmost ready");
  LastLinesLog terminated("a\nb\n");
  CHECK(last_log_lines(terminated.path, 10, 4096) == "a\nb");
}

TEST_CASE("last_log_lines is bounded in bytes and says where it cut") {
  LastLinesLog log(std::string(10000, 'x') + "\nshort\n");
  CHECK(last_log_lines(log.path, 10, 100) == "[...] short");
  LastLinesLog one_long(std::string(10000, 'y'));
  CHECK(last_log_lines(one_long.path, 10, 100) == "[...] " + std::string(100, 'y'));
}

TEST_CASE("last_log_lines: empty is empty, missing is nullopt") {
  LastLinesLog empty("");
  CHECK(last_log_lines(empty.path, 10, 4096) == std::string());
  CHECK_FALSE(last_log_lines("/nonexistent/lpd/log", 10, 4096).has_value());
}
