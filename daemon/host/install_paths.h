#pragma once

#include <string>

namespace lpd::daemon {

/// The directory of the running lpd binary (from /proc/self/exe).
std::string executable_dir();
/// lpd-monitor next to lpd (build tree and installed tree alike).
std::string monitor_path();
/// The pytest shim's package directory to put on PYTHONPATH: the installed
/// copy (<prefix>/lib/python3/dist-packages) if there is one, else the source tree's.
std::string python_shim_dir();

}  // namespace lpd::daemon
