#include "daemon/host/install_paths.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lpd::daemon {
namespace {
bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

std::string executable_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<std::size_t>(n));
  return path.substr(0, path.rfind('/'));
}

std::string monitor_path() { return executable_dir() + "/lpd-monitor"; }

std::string python_shim_dir() {
  const std::string installed = executable_dir() + "/../lib/python3/dist-packages";
  if (is_dir(installed + "/lpd_pytest")) return installed;
  // The build tree: the plugin's sources, and beside lpd its C module.
  const std::string built = executable_dir() + "/python";
  if (is_dir(built)) return std::string(LPD_SOURCE_SHIM_PYTHON_DIR) + ":" + built;
  return LPD_SOURCE_SHIM_PYTHON_DIR;
}

}  // namespace lpd::daemon
