#pragma once

#include <string>
#include <vector>

namespace lpd::shim {

/// What run.register tells the daemon about this process, read from the
/// system so the C ABI needs no argc/argv: argv from /proc/self/cmdline,
/// the working directory and the host name (empty when unknown).
struct ProcessInfo {
  std::vector<std::string> argv;
  std::string cwd;
  std::string hostname;
};

ProcessInfo current_process_info();

}  // namespace lpd::shim
