// What lpctl prints of text others chose (nodeids, cwds, reasons) shows
// every control character as '?', so none moves the cursor, clears the
// screen or starts a forged row (issue-18 attack, 2).
#include <catch2/catch.hpp>

#include "client/terminal_text.h"

using lpd::client::terminal_text;

TEST_CASE("control characters a terminal acts on become '?'", "[lpctl][issue18]") {
  CHECK(terminal_text("Evil\x1b[31mRED\n16:00:00.000  FAKE-RUN") == "Evil?[31mRED?16:00:00.000  FAKE-RUN");
  CHECK(terminal_text("a\rb\x7f" "c") == "a?b?c");
  CHECK(terminal_text("\xc2\x9b" "2J") == "?2J");  // U+009B, CSI in one character
  CHECK(terminal_text("tab\tkept") == "tab\tkept");
  CHECK(terminal_text("caf\xc3\xa9 \xe2\x9c\x93") == "caf\xc3\xa9 \xe2\x9c\x93");  // other UTF-8 unchanged
  CHECK(terminal_text("") == "");
}
