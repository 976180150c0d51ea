#pragma once

#include <string>

/// True when `part` occurs in `text` (a JUnit report, an environment block).
inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
