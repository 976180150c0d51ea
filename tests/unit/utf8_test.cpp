// The one UTF-8 rule lpd judges text by (XML, log patterns, JSON strings,
// the native shim's crash line): RFC 3629, as Python and nlohmann decode.
#include <catch2/catch.hpp>

#include <string>

#include "protocol/utf8.h"

using lpd::protocol::utf8_cut_suffix;
using lpd::protocol::utf8_sequence_length;

namespace {

std::size_t length_of(const std::string& bytes, char32_t* code = nullptr) {
  return utf8_sequence_length(bytes, 0, code);
}

}  // namespace

TEST_CASE("valid sequences of each length, with their code points", "[utf8]") {
  char32_t code = 0;
  CHECK(length_of("A", &code) == 1);
  CHECK(code == U'A');
  CHECK(length_of("\xc3\xa9", &code) == 2);  // é
  CHECK(code == 0xE9);
  CHECK(length_of("\xe2\x82\xac", &code) == 3);  // €
  CHECK(code == 0x20AC);
  CHECK(length_of("\xf0\x9f\x98\x80", &code) == 4);  // U+1F600
  CHECK(code == 0x1F600);
  CHECK(length_of("\xf4\x8f\xbf\xbf", &code) == 4);  // U+10FFFF, the last
  CHECK(code == 0x10FFFF);
  CHECK(utf8_sequence_length("ab\xc3\xa9", 2) == 2);  // from the middle of a text
}

TEST_CASE("what RFC 3629 refuses is 0: overlong, surrogates, past U+10FFFF, cut off, stray", "[utf8]") {
  CHECK(length_of("\xc0\x80") == 0);          // overlong NUL
  CHECK(length_of("\xc1\xbf") == 0);          // overlong
  CHECK(length_of("\xe0\x80\x80") == 0);      // overlong
  CHECK(length_of("\xf0\x80\x80\x80") == 0);  // overlong
  CHECK(length_of("\xed\xa0\x80") == 0);      // U+D800, a surrogate
  CHECK(length_of("\xed\xbf\xbf") == 0);      // U+DFFF
  CHECK(length_of("\xf4\x90\x80\x80") == 0);  // U+110000
  CHECK(length_of("\xf8\x88\x80\x80\x80") == 0);
  CHECK(length_of("\x80") == 0);            // a continuation byte alone
  CHECK(length_of("\xc3") == 0);            // cut off by the end
  CHECK(length_of("\xe2\x82") == 0);
  CHECK(length_of("\xc3(") == 0);           // not followed by a continuation byte
  CHECK(length_of("\xe2\x82(") == 0);
}

TEST_CASE("utf8_cut_suffix: the start of a sequence the text cuts off, never more") {
  const std::string e_acute = "\xc3\xa9", euro = "\xe2\x82\xac", emoji = "\xf0\x9f\x98\x80";
  CHECK(utf8_cut_suffix("") == 0);
  CHECK(utf8_cut_suffix("abc") == 0);
  CHECK(utf8_cut_suffix("a" + e_acute) == 0);
  CHECK(utf8_cut_suffix("a" + euro) == 0);
  CHECK(utf8_cut_suffix("a" + emoji) == 0);
  CHECK(utf8_cut_suffix("a" + e_acute.substr(0, 1)) == 1);
  CHECK(utf8_cut_suffix("a" + euro.substr(0, 1)) == 1);
  CHECK(utf8_cut_suffix("a" + euro.substr(0, 2)) == 2);
  CHECK(utf8_cut_suffix("a" + emoji.substr(0, 3)) == 3);
  CHECK(utf8_cut_suffix(emoji.substr(0, 2)) == 2);
  // Not UTF-8 at the end: nothing to wait for.
  CHECK(utf8_cut_suffix("a\x80\x80\x80") == 0);
  CHECK(utf8_cut_suffix("a\xff") == 0);
  // Every cut of a mixed text: the kept piece plus the held bytes is the
  // text, and the kept piece ends on a character boundary.
  const std::string text = "x" + e_acute + euro + emoji + "y";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    const std::string piece = text.substr(0, cut);
    const std::size_t held = utf8_cut_suffix(piece);
    const std::size_t kept = cut - held;
    CHECK((kept == text.size() || (static_cast<unsigned char>(text[kept]) & 0xC0) != 0x80));
  }
}
