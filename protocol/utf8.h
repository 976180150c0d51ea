#pragma once

#include <cstddef>
#include <string_view>

namespace lpd::protocol {

/// The length (1 to 4) of the UTF-8 sequence starting at text[at], when it
/// is one RFC 3629 allows: no overlong form, no surrogate (U+D800..DFFF),
/// nothing past U+10FFFF, not cut off by the end of `text`; 0 otherwise
/// (also for a stray continuation byte). The code point goes to `*code`
/// when `code` is given. What Python's and nlohmann's decoders accept, so
/// every place lpd judges UTF-8 (XML text, log patterns, JSON strings, the
/// native shim's crash line) judges it alike. `at` must be < text.size().
std::size_t utf8_sequence_length(std::string_view text, std::size_t at, char32_t* code = nullptr);

/// How many bytes at the end of `text` (0 to 3) are the start of a UTF-8
/// sequence the text cuts off: a lead byte and fewer continuation bytes
/// than it announces. A reader that hands text on in pieces (run output
/// pushed as JSON strings) keeps those for the next piece, so a character
/// split at a read's boundary is not replaced by U+FFFD in each half.
/// Anything else at the end (complete, or not UTF-8 at all) is 0.
std::size_t utf8_cut_suffix(std::string_view text);

}  // namespace lpd::protocol
