#include "daemon/os/proc_stat.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include "daemon/core/resource_shortage.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {
namespace {

/// Splits off the next space-separated field of `rest`.
std::string_view next_stat_field(std::string_view& rest) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const auto end = rest.find(' ');
  std::string_view field = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return field;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

/// The whole of a small /proc file; nullopt with errno set when it cannot
/// be read (ESRCH when the process vanished between open and read).
std::optional<std::string> read_small_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string text(1024, '\0');
  std::size_t used = 0;
  int read_error = 0;
  for (;;) {
    if (used == text.size()) text.resize(text.size() * 2);
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_error = errno;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  fd.reset();
  if (used == 0) {
    // An empty stat file: the process went away while we read it.
    errno = read_error != 0 ? read_error : ESRCH;
    return std::nullopt;
  }
  text.resize(used);
  return text;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat_text(std::string_view text) {
  ProcStat stat;
  const auto open_paren = text.find(" (");
  const auto close_paren = text.rfind(')');
  if (open_paren == std::string_view::npos || close_paren == std::string_view::npos || close_paren < open_paren)
    return std::nullopt;
  if (!parse_number(text.substr(0, open_paren), stat.pid)) return std::nullopt;
  std::string_view rest = text.substr(close_paren + 1);
  // Fields 3.. follow the command name; field 22 is the start time.
  std::string_view fields[20];
  for (auto& field : fields) field = next_stat_field(rest);
  if (fields[0].size() != 1) return std::nullopt;
  stat.state = fields[0].front();
  if (!parse_number(fields[1], stat.ppid) || !parse_number(fields[2], stat.pgrp) ||
      !parse_number(fields[3], stat.session))
    return std::nullopt;
  auto start = fields[19];
  while (!start.empty() && (start.back() == '\n' || start.back() == ' ')) start.remove_suffix(1);
  if (!parse_number(start, stat.start_time)) return std::nullopt;
  return stat;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  if (pid <= 0) {
    errno = ESRCH;  // no process has such a pid
    return std::nullopt;
  }
  auto text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto stat = parse_proc_stat_text(*text);
  if (!stat) errno = EINVAL;  // garbled: we could not read it, which says nothing of the process
  return stat;
}

std::string_view to_string(Liveness liveness) {
  switch (liveness) {
    case Liveness::kAlive: return "alive";
    case Liveness::kGone: return "gone";
    case Liveness::kReused: return "reused";
    case Liveness::kUnknown: return "unknown";
  }
  return "unknown";
}

bool is_no_such_process(int error) { return error == ESRCH || error == ENOENT; }

Liveness judge_liveness(const std::optional<ProcStat>& stat, int read_error, std::uint64_t start_time) {
  if (!stat) return is_no_such_process(read_error) ? Liveness::kGone : Liveness::kUnknown;
  if (start_time != 0 && stat->start_time != start_time) return Liveness::kReused;
  return stat->gone() ? Liveness::kGone : Liveness::kAlive;
}

Liveness check_liveness(pid_t pid, std::uint64_t start_time) {
  const auto stat = read_proc_stat(pid);
  return judge_liveness(stat, stat ? 0 : errno, start_time);
}

}  // namespace lpd::daemon
