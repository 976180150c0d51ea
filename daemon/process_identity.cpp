#include "daemon/process_identity.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace lpd::daemon {

std::optional<ProcessIdentity> parse_proc_stat(const std::string& text) {
  // "pid (comm) S ppid ..."; comm is free text, so find the last ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  ProcessIdentity id;
  fields >> id.state;
  std::string skip;
  // After state come fields 4..21; start time is field 22.
  for (int field = 4; field < 22; ++field)
    if (!(fields >> skip)) return std::nullopt;
  if (!(fields >> id.start_time)) return std::nullopt;
  return id;
}

std::optional<ProcessIdentity> read_process_identity(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::string text;
  std::getline(in, text);
  return parse_proc_stat(text);
}

bool same_process_alive(pid_t pid, std::uint64_t start_time) {
  auto id = read_process_identity(pid);
  if (!id || id->state == 'Z' || id->state == 'X') return false;
  return start_time == 0 || id->start_time == start_time;
}

}  // namespace lpd::daemon
