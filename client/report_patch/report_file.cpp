#include "client/report_patch/report_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace lpd::client::report_patch {
namespace {

std::runtime_error failure(const std::string& path, const std::string& why) {
  return std::runtime_error("cannot patch " + path + ": " + why);
}

/// Closes the descriptor on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

ReportFile read_report(const std::string& path, std::size_t max_bytes) {
  ReportFile report;
  Fd file{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)};
  if (file.fd < 0) {
    if (errno == ENOENT) {  // made new, with the mode the user's own tools would give it
      const mode_t mask = ::umask(0);
      ::umask(mask);
      report.mode = 0666 & ~mask;
      return report;
    }
    throw failure(path, errno == ELOOP ? "it is a symbolic link" : std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) throw failure(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw failure(path, "not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    throw failure(path, "it is " + std::to_string(st.st_size) + " bytes, over the " + std::to_string(max_bytes) +
                            "-byte limit for a report");
  report.mode = st.st_mode & 07777;
  report.owner = std::pair<unsigned, unsigned>{st.st_uid, st.st_gid};
  std::string text;
  text.resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  for (;;) {
    if (done == text.size()) {
      if (text.size() > max_bytes) throw failure(path, "it grew over the limit for a report while being read");
      text.resize(std::min(max_bytes + 1, text.size() + 65536));  // it may have grown since fstat
    }
    const ssize_t n = ::read(file.fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw failure(path, std::strerror(errno));
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (done > max_bytes) throw failure(path, "it grew over the limit for a report while being read");
  text.resize(done);
  report.text = std::move(text);
  return report;
}

int write_all(int fd, std::string_view text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

void replace_report(const std::string& path, const std::string& text, unsigned mode,
                    const std::optional<std::pair<unsigned, unsigned>>& owner) {
  std::random_device random;
  std::string temp;
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 16; ++tries) {
    temp = path + ".lpctl-" + std::to_string(random() % 1000000000u);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) throw failure(path, std::string("cannot create ") + temp + ": " + std::strerror(errno));
  }
  if (fd < 0) throw failure(path, "cannot create a temporary file beside it");
  int err = write_all(fd, text);
  if (!err && owner && ::geteuid() == 0 && ::fchown(fd, owner->first, owner->second) != 0) err = errno;
  if (!err && ::fchmod(fd, mode) != 0) err = errno;
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && std::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(temp.c_str());
    throw failure(path, std::strerror(err));
  }
}

}  // namespace lpd::client::report_patch
