#pragma once

// Every small damage to one line, for the tests that hold a fast decoder to
// the general one (message_test.cpp, test_record_test.cpp).

#include <string>
#include <string_view>

/// Calls `check(line)` for every one-byte cut of `seed`, every prefix of
/// it, and every change and insertion of each byte of `bytes` at every
/// offset: 2 + 2 * bytes.size() lines per offset.
template <typename Check>
void for_each_mangling(const std::string& seed, std::string_view bytes, Check check) {
  for (std::size_t i = 0; i < seed.size(); ++i) {
    std::string cut = seed;
    cut.erase(i, 1);
    check(cut);
    check(seed.substr(0, i));
    for (char b : bytes) {
      std::string changed = seed;
      changed[i] = b;
      check(changed);
      std::string inserted = seed;
      inserted.insert(i, 1, b);
      check(inserted);
    }
  }
}
