#pragma once
// What lpctl prints of text other users and tests choose (nodeids, cwds,
// failure reasons, tracebacks, helper names): shown, never obeyed by the
// terminal it lands on.

#include <string>
#include <string_view>

namespace lpd::client {

/// `text` with every control character a terminal could act on replaced by
/// '?': C0 (newline and escape included, so nobody forges a row or moves
/// the cursor), DEL, and C1 (U+0080..U+009F as UTF-8, which some terminals
/// read as CSI and friends). Tab is kept. Other UTF-8 passes unchanged (the
/// protocol's JSON already replaced invalid bytes). Same rule as lpd's
/// pause announcements (daemon/pauses/pause_announcement.h terminal_line),
/// for one line of a table.
inline std::string terminal_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
      out += '?';
    } else if (byte == 0xc2 && next >= 0x80 && next <= 0x9f) {
      out += '?';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace lpd::client
