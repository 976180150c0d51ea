#pragma once

#include <string_view>
#include <vector>

namespace lpd::protocol {

/// The pieces of `text` between occurrences of `separator` (not empty), as
/// Python's str.split(separator) gives them: "a::b" by "::" is {"a", "b"},
/// "" is {""}, a trailing separator leaves an empty last piece. Views into
/// `text`.
std::vector<std::string_view> split(std::string_view text, std::string_view separator);

}  // namespace lpd::protocol
