#include "daemon/core/state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <array>
#include <system_error>

#include "daemon/core/errno_error.h"
#include "daemon/core/directory_trust.h"
#include "daemon/core/storage_failure.h"
#include "daemon/core/unique_fd.h"
#include "daemon/core/untrusted_file.h"
#include "daemon/core/write_all.h"

namespace lpd::daemon {
namespace {

void write_or_fail(int fd, std::string_view data, const std::string& path) {
  if (write_all(fd, data) != 0) throw_errno("cannot write " + path);
}

std::string parent_dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

std::string StateStore::path(std::string_view relative) const { return root_ + "/" + std::string(relative); }

// 0711 under lpd's umask: a user may reach a file of theirs by its path
// (a run's output.log) but not list what others have.
void StateStore::make_dir(std::string_view relative) const {
  guarded("creating " + std::string(relative), [&] { make_directories(path(relative), 0711); });
}

template <class Write>
void StateStore::guarded(const std::string& doing, Write&& write) const {
  try {
    write();
  } catch (const StorageFailure&) {
    throw;
  } catch (const std::system_error& e) {
    throw StorageFailure(e.code().value(), root_, doing);
  }
}

void StateStore::write_json(std::string_view relative, const nlohmann::json& value, bool durable) const {
  guarded("writing " + std::string(relative), [&] {
    write_text_unguarded(relative, value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", durable);
  });
}

void StateStore::write_text(std::string_view relative, std::string_view text, bool durable) const {
  guarded("writing " + std::string(relative), [&] { write_text_unguarded(relative, text, durable); });
}

std::optional<StateStore::Range> StateStore::read_range(std::string_view relative, std::uint64_t offset,
                                                        std::size_t length) const {
  UniqueFd fd(::open(path(relative).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  Range range;
  range.total = static_cast<std::uint64_t>(st.st_size);
  if (offset >= range.total) return range;
  range.bytes.resize(static_cast<std::size_t>(std::min<std::uint64_t>(length, range.total - offset)));
  std::size_t done = 0;
  while (done < range.bytes.size()) {
    const ssize_t n = ::pread(fd.get(), range.bytes.data() + done, range.bytes.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    done += static_cast<std::size_t>(n);
  }
  return range;
}

void StateStore::write_text_unguarded(std::string_view relative, std::string_view text, bool durable) const {
  const std::string target = path(relative);
  make_directories(parent_dir_of(target), 0711);
  const std::string temp = target + ".new";
  // Mode 0600 (and lpd's umask 066): records hold other users' argv, paths
  // and environments; users read them through lpd, which checks who asks.
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot create " + temp);
  try {
    write_or_fail(fd.get(), text, temp);
    if (durable && ::fsync(fd.get()) != 0) throw_errno("cannot fsync " + temp);
  } catch (...) {
    ::unlink(temp.c_str());  // a half-written record never replaces the whole one
    throw;
  }
  fd.reset();
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    errno = error;
    throw_errno("cannot rename " + temp + " to " + target);
  }
}

std::optional<nlohmann::json> StateStore::read_json(std::string_view relative) const {
  auto text = read_untrusted_file(path(relative), kMaxRecordBytes);
  if (!text) return std::nullopt;
  auto value = nlohmann::json::parse(*text, nullptr, false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

void append_line(const std::string& path, std::string_view line, bool durable) {
  make_directories(parent_dir_of(path), 0711);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!fd) throw_errno("cannot open " + path);
  std::string text(line);
  text.push_back('\n');
  write_or_fail(fd.get(), text, path);
  if (durable && ::fsync(fd.get()) != 0) throw_errno("cannot fsync " + path);
}

std::vector<nlohmann::json> StateStore::read_lines(std::string_view relative) const {
  std::vector<nlohmann::json> out;
  visit_lines(relative, [&out](std::string_view line) {
    auto value = nlohmann::json::parse(line, nullptr, false);
    if (!value.is_discarded()) out.push_back(std::move(value));
  });
  return out;
}

void StateStore::visit_lines(std::string_view relative, const std::function<void(std::string_view)>& visit) const {
  UniqueFd fd;
  try {
    fd = open_untrusted(path(relative));
  } catch (const std::system_error&) {
    return;  // missing (or not a plain file): nothing recorded
  }
  // Line by line, each at most kMaxRecordBytes long: a journal someone
  // filled with one endless line costs a bounded buffer, not lpd's memory.
  std::string pending;
  std::array<char, 64 * 1024> chunk;
  bool skipping = false;  // inside a line too long to keep
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view data(chunk.data(), static_cast<std::size_t>(n));
    while (!data.empty()) {
      const auto newline = data.find('\n');
      const std::string_view piece = data.substr(0, newline);
      if (!skipping) pending.append(piece);
      if (pending.size() > kMaxRecordBytes) {
        pending.clear();
        skipping = true;
      }
      if (newline == std::string_view::npos) break;
      if (!skipping) visit(pending);
      pending.clear();
      skipping = false;
      data.remove_prefix(newline + 1);
    }
  }
  if (!skipping && !pending.empty()) visit(pending);  // a last line without its newline
}

void StateStore::remove(std::string_view relative) const { ::unlink(path(relative).c_str()); }

namespace {

std::vector<std::string> entries_of(const std::string& dir_path, bool directories) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(dir_path.c_str());
  if (!dir) return names;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    // The entry's own type, never a link's target: a link planted in the
    // tree is neither a file nor a directory of ours. readdir's d_type says
    // it without a stat (restoring 10,000 runs listed runs/ three times,
    // each entry by its whole path: 10 % of lpd's start); a file system
    // that leaves it DT_UNKNOWN gets fstatat beside the open directory.
    unsigned char type = entry->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == (directories ? DT_DIR : DT_REG)) names.emplace_back(name);
  }
  ::closedir(dir);
  return names;
}

}  // namespace

std::vector<std::string> StateStore::list(std::string_view relative_dir) const {
  return entries_of(path(relative_dir), false);
}

std::vector<std::string> StateStore::list_dirs(std::string_view relative_dir) const {
  return entries_of(path(relative_dir), true);
}

}  // namespace lpd::daemon
