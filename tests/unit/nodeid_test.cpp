#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "protocol/nodeid.h"

using lpd::protocol::fnv1a_64;
using lpd::protocol::kMaxNodeidBytes;
using lpd::protocol::shortened_nodeid;

TEST_CASE("a nodeid up to the bound is kept as it is", "[nodeid]") {
  CHECK(shortened_nodeid("t.py::test_a[1]") == "t.py::test_a[1]");
  const std::string at_bound(kMaxNodeidBytes, 'a');
  CHECK(shortened_nodeid(at_bound) == at_bound);
  CHECK(shortened_nodeid("").empty());
}

TEST_CASE("a longer nodeid is cut, tagged with its length and hash, and stays apart from its neighbours",
          "[nodeid]") {
  const std::string head = "t.py::test_long[" + std::string(20'000, 'A');
  const std::string a = head + "1]";
  const std::string b = head + "2]";  // differs only past the cut
  const std::string short_a = shortened_nodeid(a);
  CHECK(short_a.size() <= kMaxNodeidBytes);
  CHECK(short_a == shortened_nodeid(a));  // the same name, the same text
  CHECK(short_a != shortened_nodeid(b));
  CHECK(short_a.rfind("t.py::test_long[AAAA", 0) == 0);
  char tag[96];
  std::snprintf(tag, sizeof(tag), "[lpd: cut, %zu bytes, fnv1a-64 %016llx]", a.size(),
                static_cast<unsigned long long>(fnv1a_64(a)));
  CHECK(short_a.size() > std::string(tag).size());
  CHECK(short_a.substr(short_a.size() - std::string(tag).size()) == tag);
  // Idempotent: lpd shortening what the shim already shortened changes nothing.
  CHECK(shortened_nodeid(short_a) == short_a);
}

TEST_CASE("the cut never splits a UTF-8 character", "[nodeid]") {
  // Every alignment of 2-, 3- and 4-byte characters against the cut.
  for (const std::string& ch : {std::string("\xc3\xa9"), std::string("\xe2\x82\xac"), std::string("\xf0\x9f\x98\x80")}) {
    for (std::size_t pad = 0; pad < 4; ++pad) {
      std::string name(pad, 'p');
      while (name.size() < kMaxNodeidBytes + 100) name += ch;
      const std::string cut = shortened_nodeid(name);
      const std::size_t tag_at = cut.rfind("[lpd: cut");
      REQUIRE(tag_at != std::string::npos);
      const std::string body = cut.substr(0, tag_at);
      INFO("char " << ch.size() << " bytes, pad " << pad);
      CHECK((body.size() - pad) % ch.size() == 0);  // whole characters only
      CHECK(cut.size() <= kMaxNodeidBytes);
    }
  }
}

TEST_CASE("FNV-1a 64 matches its published test vectors", "[nodeid]") {
  CHECK(fnv1a_64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(fnv1a_64("foobar") == 0x85944171f73967e8ULL);
}
