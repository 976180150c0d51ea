#include "shim/native/src/process_info.h"

#include <climits>
#include <fstream>
#include <iterator>

#include <unistd.h>

namespace lpd::shim {

ProcessInfo current_process_info() {
  ProcessInfo info;
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  std::string arg;
  for (char c : raw) {
    if (c == '\0') {
      info.argv.push_back(std::move(arg));
      arg.clear();
    } else {
      arg.push_back(c);
    }
  }
  if (!arg.empty()) info.argv.push_back(std::move(arg));

  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) != nullptr) info.cwd = buf;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) info.hostname = host;
  return info;
}

}  // namespace lpd::shim
