#include "protocol/signal_names.h"

#include <csignal>
#include <cstring>

namespace lpd::protocol {

std::optional<std::string> known_signal_name(int signo) {
  const char* abbrev = signo > 0 ? ::sigabbrev_np(signo) : nullptr;
  if (!abbrev) return std::nullopt;
  return "SIG" + std::string(abbrev);
}

std::string signal_name(int signo) { return known_signal_name(signo).value_or("SIG" + std::to_string(signo)); }

std::optional<int> signal_number(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    const int n = std::stoi(std::string(text.substr(0, 3)));
    return n > 0 && n < NSIG ? std::optional<int>(n) : std::nullopt;
  }
  std::string name(text);
  for (auto& c : name) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  for (int signo = 1; signo < NSIG; ++signo) {
    const char* abbrev = ::sigabbrev_np(signo);
    if (abbrev && name == abbrev) return signo;
  }
  return std::nullopt;
}

}  // namespace lpd::protocol
