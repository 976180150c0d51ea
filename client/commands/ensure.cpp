#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/commands/helper_address.h"
#include "client/text_arguments.h"

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
  std::optional<std::string> scope;  // default: the project of lpctl's working directory
  bool lease = false;
  double linger = 0;
  long long keep_logs = 5;
  std::vector<std::string> command;
};

/// --lease: the helper is held for as long as this lpctl lives. Its stdout
/// is closed once the ready lines are out, so a script reading it (a pipe,
/// `coproc`, `read`) knows the helper is ready; then lpctl waits on its
/// connection until it is killed (the lease ends with it). When lpd goes
/// away (a restart), it waits for lpd to come back (50 ms doubling to 1 s,
/// as `lpctl run` does) and sends `request` again on a new connection
/// (reused, never restarted), within the 30 s lpd keeps a restarted lease
/// for its holders; stderr says so once per outage. Exits 1 when lpd
/// refuses it then (the helper ended meanwhile and cannot start).
[[noreturn]] void hold_lease(Connection connection, const GlobalOptions& global, json request,
                             std::chrono::milliseconds limit) {
  std::fflush(stdout);
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }
  request["restart"] = false;
  const std::string name = request.value("name", "");
  std::optional<Connection> held(std::move(connection));
  DaemonOutage outage;
  for (;;) {
    try {
      if (!held) {
        held.emplace(global.connect());
        held->request("proc.ensure", request, limit);
        outage.over("holding " + name + " again");
      }
      for (;;) held->next_push(std::nullopt);  // throws DaemonUnreachable when lpd closes it
    } catch (const DaemonUnreachable& e) {
      held.reset();
      outage.wait(e, " to hold " + name + " again");
    } catch (const protocol::Error& e) {
      std::fprintf(stderr, "lpctl: cannot hold %s again: %s\n", name.c_str(), e.what());
      std::exit(1);
    }
  }
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

/// one line on stderr when the helper lpctl got (reused, or a
/// start it joined) runs with another argv, pattern or cwd than asked:
/// it is used all the same, as pytest-xprocess does, but not silently.
void warn_if_differs(const std::string& name, const json& result) {
  const auto differs = result.find("differs");
  if (differs == result.end() || !differs->is_array() || differs->empty()) return;
  std::string fields;
  for (const auto& field : *differs) {
    if (!field.is_string()) continue;
    if (!fields.empty()) fields += ", ";
    fields += field.get<std::string>();
  }
  std::fprintf(stderr,
               "lpctl: warning: %s already runs (pid %d) with another %s than asked; it was %s as it runs "
               "(--restart starts it with these)\n",
               name.c_str(), result.value("pid", 0), fields.c_str(),
               result.value("outcome", "") == "joined" ? "joined" : "reused");
}

/// What the reply says happened: started by this call, a start under way
/// joined, or reused (replies from before `outcome`: started or reused).
void print_outcome(const std::string& name, const json& result) {
  std::string outcome = result.value("outcome", "");
  if (outcome.empty()) outcome = result.value("reused", false) ? "reused" : "started";
  const int pid = result.value("pid", 0);
  if (outcome == "reused") {
    std::printf("%s: already running (pid %d), reused\n", name.c_str(), pid);
    // handed back after a start that failed but left it running.
    if (const auto note = result.find("not_ready"); note != result.end() && note->is_string())
      std::printf("%s: %s\n", name.c_str(), note->get<std::string>().c_str());
    return;
  }
  // "started" only for the call that started it.
  const char* what = outcome == "joined" ? "joined a start already under way" : "started";
  const auto pattern = result.find("pattern");
  if (pattern != result.end() && pattern->is_null()) {
    // Nothing was waited for: say so rather than "ready after".
    std::printf("%s: %s (pid %d); no --pattern, so nothing was waited for: it was running when lpd answered\n",
                name.c_str(), what, pid);
    return;
  }
  std::printf("%s: %s (pid %d), ready after %s: %s\n", name.c_str(), what, pid,
              format_duration(result.value("startup_seconds", 0.0)).c_str(), result.value("ready_line", "").c_str());
}

}  // namespace

Command ensure_command() {
  auto o = std::make_shared<EnsureOptions>();
  return {
      "ensure", "Start a helper process unless it already runs, and wait until a line of its log matches a pattern",
      [o](CLI::App& app) -> CommandRun {
        app.add_option("name", o->name, "Name of the process ([A-Za-z0-9][A-Za-z0-9._-]{0,63})")->required();
        app.add_option("--pattern", o->pattern,
                       "Regex (Perl/Python syntax, Unicode text) a log line must match to be ready; "
                       "without it the process is ready once started");
        app.add_option("--scope", o->scope,
                       "Project the helper belongs to (default: the nearest ancestor of the working directory "
                       "holding pytest.ini, pyproject.toml, setup.cfg, tox.ini, setup.py or .git; '' is global)");
        app.add_flag("--lease", o->lease,
                     "Hold the helper for as long as this lpctl runs; lpd stops it once its last holder is gone");
        app.add_option("--linger", o->linger, "With --lease: seconds it outlives its last holder (default 0)")
            ->check(CLI::NonNegativeNumber);
        app.add_option("--keep-logs", o->keep_logs, "Keep the logs of this many starts (default 5)")
            ->check(CLI::Range(1, 100));
        app.add_option("--timeout", o->timeout, "Seconds to wait for the pattern (default 120)")
            ->check(CLI::PositiveNumber);
        app.add_option("--cwd", o->cwd, "Working directory (default: the current one)");
        repeatable(app.add_option("--env", o->env, "K=V added to the environment (repeatable)"));
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
          const std::string scope = o->scope ? *o->scope : project_scope(current_directory());
          json fields = {{"name", o->name},
                         {"scope", scope},
                         {"pattern", o->pattern.empty() ? json(nullptr) : json(o->pattern)},
                         {"lease", o->lease},
                         {"linger", o->linger},
                         {"keep_logs", o->keep_logs},
                         {"argv", o->command},
                         {"cwd", cwd},
                         {"env", environment_of(*o)},
                         {"timeout", o->timeout},
                         {"max_read_lines", o->max_read_lines},
                         {"restart", o->restart},
                         {"keep_on_timeout", o->keep_on_timeout}};
          require_utf8_fields(fields);  // what lpd runs is what was typed, or nothing
          auto connection = global.connect();
          // The daemon does the waiting and answers at its own timeout; ours
          // only guards against a daemon that never answers.
          const auto limit = std::chrono::milliseconds(
              static_cast<long long>((o->timeout + global.timeout_seconds + 30) * 1000));
          const json result = connection.request("proc.ensure", fields, limit);
          if (global.json) {
            warn_if_differs(o->name, result);
            print_json(result);
            if (o->lease) hold_lease(std::move(connection), global, fields, limit);
            return kExitOk;
          }
          warn_if_differs(o->name, result);
          print_outcome(o->name, result);
          std::printf("log: %s (offset %llu)\n", result.value("log_path", "").c_str(),
                      static_cast<unsigned long long>(result.value("offset", 0ull)));
          if (o->lease) {
            std::printf("holding %s (lpctl pid %d; holders now: %d); end this lpctl to let go\n",
                        result.value("full_name", o->name).c_str(), static_cast<int>(::getpid()),
                        result.value("holders", 0));
            hold_lease(std::move(connection), global, fields, limit);
          }
          return kExitOk;
        };
      }};
}

}  // namespace lpd::client
