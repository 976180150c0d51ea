// protocol::split: Python's str.split(sep), the one splitter of passwd
// lines, nodeids and /proc files.
#include <catch2/catch.hpp>

#include <string_view>
#include <vector>

#include "protocol/split.h"

using lpd::protocol::split;
using Pieces = std::vector<std::string_view>;

TEST_CASE("split gives every piece between separators, empty ones included", "[split]") {
  CHECK(split("a::b::c", "::") == Pieces{"a", "b", "c"});
  CHECK(split("t.py", "::") == Pieces{"t.py"});
  CHECK(split("", ":") == Pieces{""});
  CHECK(split("root:x:0:0::/root:/bin/sh", ":") == Pieces{"root", "x", "0", "0", "", "/root", "/bin/sh"});
  CHECK(split("a\nb\n", "\n") == Pieces{"a", "b", ""});  // a trailing separator: an empty last piece
  CHECK(split(":::", "::") == Pieces{"", ":"});
}
