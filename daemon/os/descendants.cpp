#include "daemon/os/descendants.h"

#include "protocol/split.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <csignal>
#include <map>

#include "daemon/os/leftover_test.h"
#include "daemon/core/resource_shortage.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

std::vector<ProcStat> tree_of(const std::vector<ProcStat>& snapshot, pid_t root, pid_t session) {
  std::multimap<pid_t, const ProcStat*> children;  // by parent
  const ProcStat* root_entry = nullptr;
  for (const auto& entry : snapshot) {
    children.emplace(entry.ppid, &entry);
    if (entry.pid == root) root_entry = &entry;
  }
  std::vector<ProcStat> tree;
  std::set<pid_t> seen;
  // Breadth-first from the root: each level after the one above it.
  std::vector<pid_t> level{root};
  seen.insert(root);
  if (root_entry && !root_entry->gone()) tree.push_back(*root_entry);
  while (!level.empty()) {
    std::vector<pid_t> next;
    for (pid_t parent : level) {
      const auto [first, last] = children.equal_range(parent);
      for (auto it = first; it != last; ++it) {
        const ProcStat& child = *it->second;
        if (!seen.insert(child.pid).second) continue;  // a loop in garbled data
        next.push_back(child.pid);
        if (!child.gone()) tree.push_back(child);
      }
    }
    level = std::move(next);
  }
  if (session > 0) {
    for (const auto& entry : snapshot)
      if (entry.session == session && !entry.gone() && seen.insert(entry.pid).second) tree.push_back(entry);
  }
  return tree;
}

std::vector<pid_t> stop_order(const std::vector<ProcStat>& tree, const std::set<pid_t>& stopped) {
  std::vector<pid_t> order;
  for (const auto& member : tree)
    if (!stopped.count(member.pid)) order.push_back(member.pid);
  return order;
}

std::vector<pid_t> parse_pid_list(std::string_view text) {
  std::vector<pid_t> pids;
  long long value = -1;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ' ';
    if (c >= '0' && c <= '9') {
      value = (value < 0 ? 0 : value) * 10 + (c - '0');
      if (value > 0x7fffffff) value = 0x7fffffff + 1LL;  // too large: dropped below
      continue;
    }
    if (value > 0 && value <= 0x7fffffff) pids.push_back(static_cast<pid_t>(value));
    value = -1;
  }
  return pids;
}

std::optional<bool> parse_cgroup_populated(std::string_view events) {
  std::size_t start = 0;
  while (start < events.size()) {
    auto end = events.find('\n', start);
    if (end == std::string_view::npos) end = events.size();
    const std::string_view line = events.substr(start, end - start);
    if (line == "populated 0") return false;
    if (line == "populated 1") return true;
    start = end + 1;
  }
  return std::nullopt;
}

namespace {

/// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      const char a = text[i + 1], b = text[i + 2], c = text[i + 3];
      if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out += static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0'));
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (start < line.size()) {
    while (start < line.size() && line[start] == ' ') ++start;
    if (start >= line.size()) break;
    auto end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    fields.push_back(line.substr(start, end - start));
    start = end;
  }
  return fields;
}

}  // namespace

std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo) {
  for (const std::string_view line : protocol::split(mountinfo, "\n")) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
    const auto separator = line.find(" - ");
    if (separator == std::string_view::npos) continue;
    const auto before = split_spaces(line.substr(0, separator));
    const auto after = split_spaces(line.substr(separator + 3));
    // ROOT must be "/": a bind mount of a sub-cgroup would shift every path.
    if (before.size() >= 5 && !after.empty() && after[0] == "cgroup2" && before[3] == "/")
      return unescape_octal(before[4]);
  }
  return std::nullopt;
}

std::optional<std::string> parse_cgroup2_path(std::string_view proc_cgroup) {
  for (const std::string_view line : protocol::split(proc_cgroup, "\n")) {
    if (line.rfind("0::", 0) == 0 && line.size() > 3 && line[3] == '/') {
      // " (deleted)" would follow a removed cgroup: not a place to work in.
      if (line.find(" (deleted)") != std::string_view::npos) return std::nullopt;
      return std::string(line.substr(3));
    }
  }
  return std::nullopt;
}

std::string describe_cmdline(std::string_view cmdline, std::size_t max_bytes) {
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.remove_suffix(1);
  // Valid UTF-8 is kept (the line goes into JSON records); NULs between
  // the arguments become spaces.
  return printable_utf8(cmdline, max_bytes, ' ');
}

// -- I/O ---------------------------------------------------------------------

std::vector<ProcStat> read_process_snapshot(int* error) {
  std::vector<ProcStat> snapshot;
  int missed = 0;
  DIR* dir = ::opendir("/proc");
  if (!dir) {
    if (error) *error = is_resource_shortage(errno) ? errno : 0;
    return snapshot;
  }
  while (dirent* entry = ::readdir(dir)) {
    const std::string_view name(entry->d_name);
    if (name.empty() || name.front() < '1' || name.front() > '9') continue;
    const auto pids = parse_pid_list(name);
    if (pids.size() != 1) continue;
    if (auto stat = read_proc_stat(pids.front())) {
      snapshot.push_back(*stat);
    } else if (missed == 0 && is_resource_shortage(errno)) {
      missed = errno;
    }
  }
  ::closedir(dir);
  if (error) *error = missed;
  return snapshot;
}

std::string read_cmdline(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/cmdline";
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return "";
  char buffer[512];  // bounded: a report line, not the whole argv
  std::size_t used = 0;
  while (used < sizeof buffer) {
    const ssize_t n = ::read(fd.get(), buffer + used, sizeof buffer - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  return describe_cmdline(std::string_view(buffer, used));
}

std::optional<std::string> read_environ_value(pid_t pid, std::string_view name) {
  // /proc/PID/... of a pid: no link to check; the process may be gone
  // (ESRCH, ENOENT) or not ours to read (EACCES): then it is not known.
  const std::string path = "/proc/" + std::to_string(pid) + "/environ";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::nullopt;
  std::string text(kMaxEnvironBytes + 1, '\0');  // one byte more: tells a cut read
  std::size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  fd.reset();
  const bool cut = used > kMaxEnvironBytes;
  text.resize(std::min(used, kMaxEnvironBytes));
  const auto value = environ_value(text, name, cut);
  if (!value) return std::nullopt;
  return std::string(*value);
}

std::vector<Leftover> kill_own_descendants(int cgroup_kill_fd) {
  const pid_t self = ::getpid();
  std::vector<Leftover> found;
  // Each member is pinned by a pidfd before it is stopped, so the SIGKILL
  // at the end reaches the process that was stopped even if its pid were
  // freed and reused meanwhile.
  std::map<pid_t, UniqueFd> stopped;
  std::set<pid_t> stopped_pids;
  // A fork bomb could keep one step ahead for a while; each round stops a
  // whole level, so the bound is only against garbled /proc.
  for (int round = 0; round < 10000; ++round) {
    const auto tree = tree_of(read_process_snapshot(), self, 0);
    bool any = false;
    for (pid_t pid : stop_order(tree, stopped_pids)) {
      if (pid == self) continue;
      stopped_pids.insert(pid);
      UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
      if (!pidfd) continue;  // already gone
      // With the pid pinned: still the process the scan saw?
      const auto stat = read_proc_stat(pid);
      const auto it = std::find_if(tree.begin(), tree.end(), [pid](const ProcStat& m) { return m.pid == pid; });
      if (!stat || stat->gone() || it == tree.end() || stat->start_time != it->start_time) continue;
      Leftover leftover{pid, stat->start_time, read_cmdline(pid), std::nullopt};
      // which test started it (pytest's variable, inherited at
      // exec); read only for those a report lists: a fork bomb's thousands
      // cost no more.
      if (found.size() < kMaxLeftoversDescribed) leftover.pytest_current_test = read_environ_value(pid, "PYTEST_CURRENT_TEST");
      found.push_back(std::move(leftover));
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGSTOP, nullptr, 0);
      stopped.emplace(pid, std::move(pidfd));
      any = true;
    }
    if (!any) break;
  }
  if (cgroup_kill_fd >= 0) (void)!::pwrite(cgroup_kill_fd, "1", 1, 0);
  for (auto& [pid, pidfd] : stopped) {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    pidfd.reset();
  }
  // Every descendant is ours to reap now or becomes ours when its parent
  // dies (we are their subreaper): ECHILD means the whole tree is gone.
  for (;;) {
    int status = 0;
    const pid_t reaped = ::waitpid(-1, &status, 0);
    if (reaped < 0 && errno == EINTR) continue;
    if (reaped < 0) break;
  }
  return found;
}

}  // namespace lpd::daemon
