#include <catch2/catch.hpp>

#include <string>

#include "daemon/crashes/bounded_traceback.h"

using lpd::daemon::BoundedTraceback;

namespace {

/// Lines "line N\n" from `first` while under `bytes`.
std::string lines(int first, std::size_t bytes) {
  std::string out;
  for (int i = first; out.size() < bytes; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

}  // namespace

TEST_CASE("a traceback that fits is kept whole, however it arrives", "[bounded_traceback]") {
  BoundedTraceback t;
  CHECK(t.empty());
  const std::string text = lines(0, BoundedTraceback::kMaxBytes - 20);
  for (std::size_t at = 0; at < text.size(); at += 1000) t.add(std::string_view(text).substr(at, 1000));
  CHECK_FALSE(t.empty());
  CHECK(t.text() == text);
}

TEST_CASE("a long traceback keeps its head and its end, saying how much is left out", "[bounded_traceback]") {
  const std::string text = "Fatal Python error: Segmentation fault\n\n" + lines(0, 1 << 20) +
                           "Current thread 0x7f (most recent call first):\n  File \"t.py\", line 3 in test_dies\n";
  for (std::size_t piece : {std::size_t{1}, std::size_t{4096}, std::size_t{70000}, text.size()}) {
    INFO(piece);
    BoundedTraceback t;
    for (std::size_t at = 0; at < text.size(); at += piece) t.add(std::string_view(text).substr(at, piece));
    const std::string kept = t.text();
    CHECK(kept.size() <= BoundedTraceback::kMaxBytes + 80);
    CHECK(kept.size() >= BoundedTraceback::kMaxBytes - 100);
    CHECK(kept.rfind("Fatal Python error: Segmentation fault\n\nline 0\n", 0) == 0);
    const std::string tail = "Current thread 0x7f (most recent call first):\n  File \"t.py\", line 3 in test_dies\n";
    CHECK(kept.substr(kept.size() - tail.size()) == tail);
    // The note sits between whole lines and counts exactly what is missing.
    const auto note = kept.find("... lpd left out ");
    REQUIRE(note != std::string::npos);
    CHECK(kept[note - 1] == '\n');
    const auto note_end = kept.find(" bytes of this traceback here ...\n", note);
    REQUIRE(note_end != std::string::npos);
    const std::size_t left_out = std::stoul(kept.substr(note + 17, note_end - note - 17));
    const std::string after = kept.substr(note_end + 34);
    CHECK(after.rfind("line ", 0) == 0);
    std::string before = kept.substr(0, note);
    // The head ends where the text was cut, plus the newline added for the note.
    if (text.compare(0, before.size(), before) != 0) before.pop_back();
    CHECK(text.compare(0, before.size(), before) == 0);
    CHECK(before.size() + left_out + after.size() == text.size());
  }
}

TEST_CASE("a cut never leaves part of a UTF-8 character", "[bounded_traceback]") {
  // No newline anywhere: the tail starts at a character, not a line.
  std::string text;
  while (text.size() < 3 * BoundedTraceback::kMaxBytes) text += "\xe2\x82\xac";  // U+20AC, 3 bytes
  BoundedTraceback t;
  t.add(text);
  const std::string kept = t.text();
  const auto note = kept.find("\n... lpd left out ");
  REQUIRE(note != std::string::npos);
  CHECK(note % 3 == 0);  // the head ends after a whole character
  const std::string after = kept.substr(kept.find("here ...\n") + 9);
  CHECK(after.size() % 3 == 0);
  CHECK(after.rfind("\xe2\x82\xac", 0) == 0);
}
