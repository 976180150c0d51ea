#include "daemon/os/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "daemon/core/unique_fd.h"
#include "daemon/os/descendants.h"

namespace lpd::daemon {
namespace {

/// A small kernel file (cgroup.procs, /proc/self/mountinfo...), bounded:
/// at most `limit` bytes. nullopt with errno when it cannot be opened.
std::optional<std::string> read_kernel_file(const std::string& path, std::size_t limit = 1 << 20) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::nullopt;
  std::string text;
  char buffer[8192];
  int error = 0;
  while (text.size() < limit) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = errno;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  fd.reset();
  if (error != 0) {
    errno = error;
    return std::nullopt;
  }
  return text;
}

bool write_kernel_file(const std::string& path, const char* text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return false;
  const ssize_t n = ::write(fd.get(), text, std::strlen(text));
  const int error = errno;
  fd.reset();
  errno = error;
  return n == static_cast<ssize_t>(std::strlen(text));
}

bool is_cgroup2_dir(const std::string& dir) {
  const UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  struct statfs fs {};
  return fd && ::fstatfs(fd.get(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

CgroupBase detect() {
  CgroupBase base;
  if (const char* setting = std::getenv("LPD_CGROUPS"); setting && std::string(setting) == "off") {
    base.why_not = "LPD_CGROUPS=off";
    return base;
  }
  const auto mountinfo = read_kernel_file("/proc/self/mountinfo", 4 << 20);
  const auto mount = mountinfo ? parse_cgroup2_mount(*mountinfo) : std::nullopt;
  if (!mount) {
    base.why_not = "no cgroup2 filesystem is mounted";
    return base;
  }
  const auto own_text = read_kernel_file("/proc/self/cgroup");
  const auto own = own_text ? parse_cgroup2_path(*own_text) : std::nullopt;
  if (!own) {
    base.why_not = "lpd is in no cgroup of the unified hierarchy";
    return base;
  }
  const std::string own_dir = *mount + (*own == "/" ? "" : *own);
  // Moving a child from lpd's cgroup into one below needs write access to
  // cgroup.procs of their common ancestor: lpd's own cgroup.
  if (::access((own_dir + "/cgroup.procs").c_str(), W_OK) != 0) {
    base.why_not = "lpd's cgroup " + own_dir + " is not writable by lpd (" + std::strerror(errno) + ")";
    return base;
  }
  const std::string relative = (*own == "/" ? "" : *own) + "/lpd.supervised";
  const std::string dir = *mount + relative;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    base.why_not = "cannot create " + dir + " (" + std::strerror(errno) + ")";
    return base;
  }
  if (!is_cgroup2_dir(dir) || ::access((dir + "/cgroup.procs").c_str(), W_OK) != 0) {
    base.why_not = dir + " is not a writable cgroup2 directory";
    return base;
  }
  base.dir = dir;
  base.relative = relative;
  base.mount = *mount;
  return base;
}

}  // namespace

const CgroupBase& supervision_cgroup_base() {
  static const CgroupBase base = detect();
  return base;
}

std::optional<NewCgroup> make_launch_cgroup(const CgroupBase& base) {
  if (!base.usable()) {
    errno = ENOTSUP;
    return std::nullopt;
  }
  static std::atomic<unsigned long> counter{0};
  NewCgroup made;
  // A name left by an earlier process with this pid (still populated) is
  // skipped: mkdir says EEXIST.
  for (int attempt = 0;; ++attempt) {
    made.dir = base.dir + "/t" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    if (::mkdir(made.dir.c_str(), 0755) == 0) break;
    if (errno != EEXIST || attempt >= 1000) return std::nullopt;
  }
  made.procs_fd = ::open((made.dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (made.procs_fd < 0) {
    const int error = errno;
    ::rmdir(made.dir.c_str());
    errno = error;
    return std::nullopt;
  }
  return made;
}

bool sweepable_cgroup_name(const std::string& name, pid_t self, bool (*creator_alive)(pid_t)) {
  // "t<pid>-<n>"; "new-<pid>-<n>" was the name of an earlier build's.
  std::string_view rest(name);
  if (rest.rfind("t", 0) == 0)
    rest.remove_prefix(1);
  else if (rest.rfind("new-", 0) == 0)
    rest.remove_prefix(4);
  else
    return false;
  const auto dash = rest.find('-');
  if (dash == std::string_view::npos || dash == 0) return false;
  const auto creator = parse_pid_list(rest.substr(0, dash));
  const auto number = parse_pid_list(rest.substr(dash + 1));
  if (creator.size() != 1 || number.size() != 1 || std::to_string(creator.front()) != rest.substr(0, dash) ||
      std::to_string(number.front()) != rest.substr(dash + 1))
    return false;
  return creator.front() == self || !creator_alive(creator.front());
}

namespace {
bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }
bool never_alive(pid_t) { return false; }
}  // namespace

bool is_launch_cgroup(const CgroupBase& base, const std::string& dir) {
  const auto slash = dir.rfind('/');
  if (!base.usable() || slash == std::string::npos || dir.compare(0, slash, base.dir) != 0 ||
      slash != base.dir.size())
    return false;
  const std::string name = dir.substr(slash + 1);
  // The shape of a launch's name ("t<pid>-<n>"), whoever made it.
  return name.rfind("t", 0) == 0 && sweepable_cgroup_name(name, 0, never_alive);
}

void remove_empty_cgroups(const CgroupBase& base) {
  if (!base.usable()) return;
  DIR* dir = ::opendir(base.dir.c_str());
  if (!dir) return;
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir))
    if (entry->d_type == DT_DIR) names.push_back(entry->d_name);
  ::closedir(dir);
  const pid_t self = ::getpid();
  for (const auto& name : names)
    if (sweepable_cgroup_name(name, self, pid_alive)) ::rmdir((base.dir + "/" + name).c_str());
}

std::string tree_cgroup_of(const CgroupBase& base, pid_t pid) {
  if (!base.usable()) return "";
  const auto text = read_kernel_file("/proc/" + std::to_string(pid) + "/cgroup");
  const auto path = text ? parse_cgroup2_path(*text) : std::nullopt;
  const std::string prefix = base.relative + "/t";
  if (!path || path->rfind(prefix, 0) != 0 || path->find('/', prefix.size()) != std::string::npos) return "";
  return base.mount + *path;
}

std::vector<pid_t> cgroup_members(const std::string& dir, int* error) {
  const auto text = read_kernel_file(dir + "/cgroup.procs", 4 << 20);
  if (error) *error = text ? 0 : errno;
  return text ? parse_pid_list(*text) : std::vector<pid_t>{};
}

bool process_in_cgroup(pid_t pid, const std::string& relative) {
  const auto text = read_kernel_file("/proc/" + std::to_string(pid) + "/cgroup");
  const auto path = text ? parse_cgroup2_path(*text) : std::nullopt;
  return path && *path == relative;
}

bool kill_cgroup(const std::string& dir) {
  if (write_kernel_file(dir + "/cgroup.kill", "1")) return true;
  if (errno != ENOENT) return false;
  // Before Linux 5.14: freeze, kill each member, thaw. Frozen members
  // cannot fork; SIGKILL ends them even frozen.
  if (!write_kernel_file(dir + "/cgroup.freeze", "1")) return false;
  for (pid_t pid : cgroup_members(dir)) ::kill(pid, SIGKILL);
  return write_kernel_file(dir + "/cgroup.freeze", "0");
}

std::optional<bool> cgroup_populated(const std::string& dir) {
  const auto text = read_kernel_file(dir + "/cgroup.events");
  return text ? parse_cgroup_populated(*text) : std::nullopt;
}

}  // namespace lpd::daemon
