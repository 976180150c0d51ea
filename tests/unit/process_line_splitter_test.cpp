#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "daemon/logs/line_splitter.h"
#include "daemon/logs/log_stream.h"

using namespace lpd::daemon;

namespace {

/// A line as reported, copied out of the splitter's buffer.
struct Seen {
  std::string text;
  std::uint64_t end;
  bool truncated;
};

std::vector<Seen> feed_all(LineSplitter& splitter, const std::vector<std::string>& pieces) {
  std::vector<Seen> seen;
  for (const auto& piece : pieces)
    splitter.feed(piece, [&](const LineSplitter::Line& l) { seen.push_back({std::string(l.text), l.end_offset, l.truncated}); });
  return seen;
}

}  // namespace

TEST_CASE("lines come out whole whatever the read boundaries, with the offset after each") {
  LineSplitter splitter(100);
  const auto seen = feed_all(splitter, {"hel", "lo\nwor", "ld\n", "\n", "tail"});
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].text == "hello");
  CHECK(seen[0].end == 6);
  CHECK(seen[1].text == "world");
  CHECK(seen[1].end == 12);
  CHECK(seen[2].text.empty());
  CHECK(seen[2].end == 13);
  CHECK(splitter.offset() == 17);
  CHECK(splitter.buffered() == 4);
  std::vector<std::string> flushed;
  splitter.flush([&](const LineSplitter::Line& l) { flushed.emplace_back(l.text); });
  CHECK(flushed == std::vector<std::string>{"tail"});
}

TEST_CASE("offsets continue from where the reading started") {
  LineSplitter splitter(100, 1000);
  const auto seen = feed_all(splitter, {"ab\n"});
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].end == 1003);
}

TEST_CASE("a 10 MB line without a newline costs at most the bound and is reported once, cut") {
  LineSplitter splitter(64 * 1024);
  const std::string block(1024 * 1024, 'x');
  std::vector<Seen> seen;
  for (int i = 0; i < 10; ++i) {
    splitter.feed(block, [&](const LineSplitter::Line& l) { seen.push_back({std::string(l.text), l.end_offset, l.truncated}); });
    CHECK(splitter.buffered() <= 64 * 1024);
  }
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].truncated);
  CHECK(seen[0].text.size() == 64 * 1024);
  CHECK(seen[0].end == 64 * 1024);
  // The rest of the long line is skipped; the next line is whole again.
  splitter.feed("yyy\nready\n", [&](const LineSplitter::Line& l) { seen.push_back({std::string(l.text), l.end_offset, l.truncated}); });
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].text == "ready");
  CHECK_FALSE(seen[1].truncated);
  CHECK(seen[1].end == 10ull * 1024 * 1024 + 10);
}

TEST_CASE("a line of exactly the bound is whole") {
  LineSplitter splitter(4);
  const auto seen = feed_all(splitter, {"abcd", "\nabcde\n"});
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].text == "abcd");
  CHECK_FALSE(seen[0].truncated);
  CHECK(seen[1].text == "abcd");
  CHECK(seen[1].truncated);
}

TEST_CASE("log pieces are cut at UTF-8 character boundaries") {
  CHECK(complete_utf8_prefix("abc") == 3);
  CHECK(complete_utf8_prefix("a\xC3\xA9") == 3);        // é complete
  CHECK(complete_utf8_prefix("a\xC3") == 1);            // é cut after its first byte
  CHECK(complete_utf8_prefix("a\xE2\x82") == 1);        // € cut
  CHECK(complete_utf8_prefix("a\xF0\x9F\x98\x80") == 5);  // emoji complete
  CHECK(complete_utf8_prefix("\x80\x80\x80\x80\x80") == 5);  // garbage counts as complete
}
