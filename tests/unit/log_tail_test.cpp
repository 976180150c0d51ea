// LogTail from an offset: past the end it waits for the file to get there;
// a file that shrinks below what was read was truncated (read it again).

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <boost/asio/io_context.hpp>

#include "daemon/logs/log_tail.h"

using namespace lpd::daemon;

namespace {

struct TailLog {
  std::string path;
  TailLog() {
    char name[] = "/tmp/lpd-log-tail-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = name;
  }
  ~TailLog() { ::unlink(path.c_str()); }
  void append(const std::string& text) const {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  void truncate_to_empty() const { REQUIRE(::truncate(path.c_str(), 0) == 0); }
};

}  // namespace

TEST_CASE("a tail from past the end of a log waits for the log to get there, not for the start") {
  TailLog log;
  log.append("abc");
  boost::asio::io_context io;
  std::string seen;
  std::uint64_t end = 0;
  auto tail = LogTail::open(io, log.path, 10, [&](std::string_view bytes, std::uint64_t at) {
    seen += bytes;
    end = at;
  });
  tail->follow();
  io.poll();  // it reads, finds the log short, waits on inotify
  CHECK(seen.empty());
  log.append("defghijklmno");  // bytes 3..14
  while (end < 15) io.run_one();
  CHECK(seen == "klmno");
  tail->stop();
}

TEST_CASE("a tail that read part of a log and sees it shrink reads it again from the start") {
  TailLog log;
  log.append("first line\n");
  boost::asio::io_context io;
  std::string seen;
  auto tail = LogTail::open(io, log.path, 0, [&](std::string_view bytes, std::uint64_t) { seen += bytes; });
  tail->follow();
  while (seen.size() < 11) io.run_one();
  CHECK(seen == "first line\n");
  log.truncate_to_empty();
  log.append("new\n");
  while (seen.size() < 15) io.run_one();
  CHECK(seen == "first line\nnew\n");
  tail->stop();
}

// h13cpu (issue 13): with a coalescing window, a tail whose windows keep
// finding output reads again a window later without waiting on inotify,
// and goes back to inotify once a window finds nothing: no byte is missed
// on either way, nor at the switch between them.
TEST_CASE("a coalescing tail sees every byte while output flows, after a pause, and again") {
  TailLog log;
  boost::asio::io_context io;
  std::string seen;
  int chunks = 0;
  auto tail = LogTail::open(io, log.path, 0, [&](std::string_view bytes, std::uint64_t) {
    seen += bytes;
    ++chunks;
  });
  tail->set_coalescing(std::chrono::milliseconds(5));
  tail->follow();
  io.poll();
  std::string expected;
  for (int round = 0; round < 3; ++round) {
    // Flowing: each piece is written once the previous one was read.
    for (int i = 0; i < 5; ++i) {
      const std::string piece = std::to_string(round) + ":" + std::to_string(i) + ".";
      log.append(piece);
      expected += piece;
      while (seen.size() < expected.size()) io.run_one();
      CHECK(seen == expected);
    }
    // Quiet: run until the timer read found nothing and the tail waits on
    // inotify again (no handler is left ready to run).
    io.run_for(std::chrono::milliseconds(30));
    CHECK(seen == expected);
  }
  // Pieces written within one window come as one chunk.
  const int before = chunks;
  log.append("a");
  log.append("b");
  log.append("c");
  expected += "abc";
  while (seen.size() < expected.size()) io.run_one();
  CHECK(seen == expected);
  CHECK(chunks == before + 1);
  tail->stop();
}
