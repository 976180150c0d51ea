#include <cstdio>
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/commands/helper_address.h"

namespace lpd::client {
namespace {

/// What `lpctl kill` / `kill-all` were told.
struct KillOptions {
  std::string name;
  std::string signal = "TERM";
  double grace = 5;
  std::optional<std::string> scope;
  bool force = false;
};

std::chrono::milliseconds kill_limit(const GlobalOptions& global, double grace) {
  return std::chrono::milliseconds(static_cast<long long>((grace + global.timeout_seconds + 10) * 1000));
}

void print_killed(const json& p) {
  const std::string name = p.value("name", "");
  if (p.value("released", false)) {
    std::printf("released %s: %d other holders keep it running\n", name.c_str(), p.value("holders", 0));
    return;
  }
  if (!p.value("was_running", false)) {
    const auto left = p.find("left_running_killed");
    if (left != p.end() && left->is_array() && !left->empty()) {
      // Its leader had exited, its tree had not (a daemonizing server).
      std::printf("%s had exited (%s); stopped the %zu process(es) it left running%s:\n", name.c_str(),
                  p.value("state", "").c_str(), left->size(),
                  p.value("forced", false) ? ", SIGKILL after the grace period" : "");
      for (const auto& process : *left)
        std::printf("  pid %d: %s\n", process.value("pid", 0), process.value("argv", "").c_str());
      return;
    }
    std::printf("%s was not running (%s)\n", name.c_str(), p.value("state", "").c_str());
    return;
  }
  const json& exit = p["exit_status"];
  const std::string how = exit.is_object() ? exit.value("description", "") : std::string("gone");
  std::printf("killed %s (pid %d): %s%s\n", name.c_str(), p.value("pid", 0), how.c_str(),
              p.value("forced", false) ? ", SIGKILL after the grace period" : "");
}

}  // namespace

Command kill_command() {
  auto o = std::make_shared<KillOptions>();
  return {"kill", "Stop a helper process and its whole tree (or what its tree left running after it exited); returns once it is gone",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("name", o->name, "Name of the process (in this project), or its full name SCOPE::NAME")
                ->required();
            app.add_option("--scope", o->scope, "Project directory of the process (default: this project's)");
            app.add_option("-s,--signal", o->signal, "Signal to send first (default TERM)");
            app.add_option("--grace", o->grace, "Seconds before SIGKILL (default 5)")->check(CLI::NonNegativeNumber);
            app.add_flag("--force", o->force, "Kill it even while other connections hold it (leases)");
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              const json result = request_helper(connection, "proc.kill", o->name, o->scope,
                                                 {{"signal", o->signal}, {"grace", o->grace}, {"force", o->force}},
                                                 kill_limit(global, o->grace));
              if (global.json) {
                print_json(result);
              } else {
                print_killed(result);
              }
              return kExitOk;
            };
          }};
}

Command kill_all_command() {
  auto o = std::make_shared<KillOptions>();
  return {"kill-all", "Stop every helper process you own (every one, for root) and print what was killed",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("-s,--signal", o->signal, "Signal to send first (default TERM)");
            app.add_option("--grace", o->grace, "Seconds before SIGKILL (default 5)")->check(CLI::NonNegativeNumber);
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              const json result = connection.request("proc.kill_all", {{"signal", o->signal}, {"grace", o->grace}},
                                                     kill_limit(global, o->grace));
              if (global.json) {
                print_json(result);
                return kExitOk;
              }
              if (result["killed"].empty()) std::printf("nothing to kill\n");
              for (const auto& p : result["killed"]) print_killed(p);
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
