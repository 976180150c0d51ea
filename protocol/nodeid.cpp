#include "protocol/nodeid.h"

#include <cstdio>

namespace lpd::protocol {

std::uint64_t fnv1a_64(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string shortened_nodeid(std::string name) {
  if (name.size() <= kMaxNodeidBytes) return name;
  char tag[96];
  const int n = std::snprintf(tag, sizeof(tag), "[lpd: cut, %zu bytes, fnv1a-64 %016llx]", name.size(),
                              static_cast<unsigned long long>(fnv1a_64(name)));
  std::size_t cut = kMaxNodeidBytes - static_cast<std::size_t>(n);
  // Back to the start of a character (a continuation byte is 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  name.resize(cut);
  name.append(tag, static_cast<std::size_t>(n));
  return name;
}

}  // namespace lpd::protocol
