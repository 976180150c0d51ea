#include "daemon/state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

#include "daemon/listen_socket.h"

namespace lpd::daemon {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

void write_all(int fd, const std::string& data, const std::string& path) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write " + path);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string dump_line(const nlohmann::json& value) {
  std::string line = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

}  // namespace

std::string StateStore::path(std::string_view relative) const { return root_ + "/" + std::string(relative); }

void StateStore::make_dir(std::string_view relative) const { make_directories(path(relative), 0755); }

void StateStore::write_json(std::string_view relative, const nlohmann::json& value, bool durable) const {
  const std::string target = path(relative);
  make_directories(parent_of(target), 0755);
  const std::string temp = target + ".new";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create " + temp);
  try {
    write_all(fd, value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", temp);
    if (durable && ::fsync(fd) != 0) fail("cannot fsync " + temp);
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(temp.c_str(), target.c_str()) != 0) fail("cannot rename " + temp + " to " + target);
}

std::optional<nlohmann::json> StateStore::read_json(std::string_view relative) const {
  std::ifstream in(path(relative));
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto value = nlohmann::json::parse(buffer.str(), nullptr, false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

void append_json_line(const std::string& path, const nlohmann::json& value, bool durable) {
  make_directories(parent_of(path), 0755);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot open " + path);
  try {
    write_all(fd, dump_line(value), path);
    if (durable && ::fsync(fd) != 0) fail("cannot fsync " + path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

void StateStore::append_line(std::string_view relative, const nlohmann::json& value, bool durable) const {
  append_json_line(path(relative), value, durable);
}

std::vector<nlohmann::json> StateStore::read_lines(std::string_view relative) const {
  std::vector<nlohmann::json> out;
  std::ifstream in(path(relative));
  std::string line;
  while (std::getline(in, line)) {
    auto value = nlohmann::json::parse(line, nullptr, false);
    if (!value.is_discarded()) out.push_back(std::move(value));
  }
  return out;
}

void StateStore::remove(std::string_view relative) const { ::unlink(path(relative).c_str()); }

namespace {

std::vector<std::string> entries_of(const std::string& dir_path, bool directories) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(dir_path.c_str());
  if (!dir) return names;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::stat((dir_path + "/" + name).c_str(), &st) != 0) continue;
    if (directories ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) names.push_back(std::move(name));
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
