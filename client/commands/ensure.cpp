#include <unistd.h>

#include <climits>
#include <cstdio>
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/commands/commands.h"

extern char** environ;

namespace lpd::client {
namespace {

/// What `lpctl ensure` was told.
struct EnsureOptions {
  std::string name;
  std::string pattern;
  double timeout = 120;
  std::string cwd;
  std::vector<std::string> env;
  bool clean_env = false;
  long long max_read_lines = 0;
  bool restart = false;
  bool keep_on_timeout = false;
  std::vector<std::string> command;
};

std::string current_directory() {
  char buffer[PATH_MAX];
  return ::getcwd(buffer, sizeof(buffer)) ? std::string(buffer) : std::string("/");
}

/// lpctl's own environment (unless --clean-env) with --env on top.
json environment_of(const EnsureOptions& o) {
  json env = json::object();
  if (!o.clean_env) {
    for (char** entry = environ; entry && *entry; ++entry) {
      const std::string kv = *entry;
      const auto eq = kv.find('=');
      if (eq != std::string::npos && eq > 0) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& kv : o.env) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw std::runtime_error("--env wants K=V, got \"" + kv + "\"");
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

}  // namespace

Command ensure_command() {
  auto o = std::make_shared<EnsureOptions>();
  return {
      "ensure", "Start a helper process unless it already runs, and wait until a line of its log matches a pattern",
      [o](CLI::App& app) -> CommandRun {
        app.add_option("name", o->name, "Name of the process ([A-Za-z0-9][A-Za-z0-9._-]{0,63})")->required();
        app.add_option("--pattern", o->pattern, "Regex (Perl/Python syntax) a log line must match to be ready")
            ->required();
        app.add_option("--timeout", o->timeout, "Seconds to wait for the pattern (default 120)")
            ->check(CLI::PositiveNumber);
        app.add_option("--cwd", o->cwd, "Working directory (default: the current one)");
        app.add_option("--env", o->env, "K=V added to the environment (repeatable)")->allow_extra_args(false);
        app.add_flag("--clean-env", o->clean_env, "Start from an empty environment, not lpctl's");
        app.add_option("--max-read-lines", o->max_read_lines,
                       "Give up after this many non-empty lines without a match (default: no limit)")
            ->check(CLI::NonNegativeNumber);
        app.add_flag("--restart", o->restart, "Stop a running one and start afresh");
        app.add_flag("--keep-on-timeout", o->keep_on_timeout, "Leave the process running when the pattern times out");
        app.add_option("command", o->command, "-- CMD [ARGS...]")->required();
        return [o](const GlobalOptions& global) {
          std::string cwd = o->cwd.empty() ? current_directory() : o->cwd;
          if (cwd.front() != '/') cwd = current_directory() + "/" + cwd;
          json fields = {{"name", o->name},
                         {"pattern", o->pattern},
                         {"argv", o->command},
                         {"cwd", cwd},
                         {"env", environment_of(*o)},
                         {"timeout", o->timeout},
                         {"max_read_lines", o->max_read_lines},
                         {"restart", o->restart},
                         {"keep_on_timeout", o->keep_on_timeout}};
          auto connection = global.connect();
          // The daemon does the waiting and answers at its own timeout; ours
          // only guards against a daemon that never answers.
          const auto limit = std::chrono::milliseconds(
              static_cast<long long>((o->timeout + global.timeout_seconds + 30) * 1000));
          const json result = connection.request("proc.ensure", std::move(fields), limit);
          if (global.json) {
            print_json(result);
            return kExitOk;
          }
          if (result.value("reused", false)) {
            std::printf("%s: already running (pid %d), reused\n", o->name.c_str(), result.value("pid", 0));
          } else {
            std::printf("%s: started (pid %d), ready after %s: %s\n", o->name.c_str(), result.value("pid", 0),
                        format_duration(result.value("startup_seconds", 0.0)).c_str(),
                        result.value("ready_line", "").c_str());
          }
          std::printf("log: %s (offset %llu)\n", result.value("log_path", "").c_str(),
                      static_cast<unsigned long long>(result.value("offset", 0ull)));
          return kExitOk;
        };
      }};
}

}  // namespace lpd::client
