#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/connection.h"

namespace lpd::client {

/// Exit codes shared by every lpctl command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the daemon said no, or the thing asked about failed
inline constexpr int kExitUnreachable = 2;  // no daemon answered
inline constexpr int kExitUsage = 64;       // bad command line
inline constexpr int kExitTimedOut = 124;   // a wait gave up (lpctl watch --timeout), as timeout(1)

/// makes `option` (a std::vector one) take one value
/// each time it is given, so `--env A=1 --env B=2` collects both and
/// `--env A=1 -- cmd -x` ends at `--`. CLI11 lets a vector option eat
/// every word up to the next option and swallow a `--` after them: the
/// command's own options (-x) were then read as lpctl's. Returns `option`.
inline CLI::Option* repeatable(CLI::Option* option) {
  return option->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

/// Options every command understands.
struct GlobalOptions {
  std::string socket;     // resolved before a command runs
  bool json = false;
  double timeout_seconds = 10;

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  }
  Connection connect(std::string_view role = "cli") const;
};

using CommandRun = std::function<int(const GlobalOptions&)>;

/// One row of lpctl's command table: `configure` adds the command's own
/// options to its subcommand and returns what runs it.
struct Command {
  const char* name;
  const char* description;
  std::function<CommandRun(CLI::App&)> configure;
};

/// Every lpctl command, in the order `lpctl --help` lists them.
std::vector<Command> command_table();

/// Prints `value` as one line of JSON (for --json output) and flushes it.
void print_json(const nlohmann::json& value);
/// "3.2s", "4m05s", "2h07m", for human tables.
std::string format_duration(double seconds);

}  // namespace lpd::client
