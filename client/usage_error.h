#pragma once

#include <stdexcept>
#include <string>

namespace lpd::client {

/// A command line lpctl refuses before sending anything (a user name that
/// does not exist, an argument that is not UTF-8). lpctl_main prints it
/// and exits with kExitUsage, as for CLI11's own parse errors.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace lpd::client
