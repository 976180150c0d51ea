#include <cstdio>
#include <iostream>
#include <memory>

#include <unistd.h>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/commands/helper_address.h"
#include "client/commands/helper_name_options.h"

namespace lpd::client {
namespace {

/// What `lpctl kill` / `kill-all` were told.
struct KillOptions {
  std::string name;
  std::string signal = "TERM";
  double grace = 5;
  std::optional<std::string> scope;
  bool force = false;
  std::optional<std::string> owner;
  bool all_projects = false;         // kill-all in every scope
};

std::chrono::milliseconds kill_limit(const GlobalOptions& global, double grace) {
  return std::chrono::milliseconds(static_cast<long long>((grace + global.timeout_seconds + 10) * 1000));
}

void print_killed(const json& p) {
  // what was killed by its full name (SCOPE::NAME; the name alone
  // in the global scope): a NAME may have reached another project.
  const std::string name = p.contains("full_name") && p["full_name"].is_string() ? p["full_name"].get<std::string>()
                                                                                 : p.value("name", "");
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
            add_helper_name_options(app, o->name, o->scope);
            app.add_option("-s,--signal", o->signal, "Signal to send first (default TERM)");
            app.add_option("--grace", o->grace, "Seconds before SIGKILL (default 5)")->check(CLI::NonNegativeNumber);
            // proc.kill from a connection that holds no lease (lpctl's) stops the
            // helper whoever holds it; force only matters to a holder (the
            // xprocess fixture), whose plain kill just drops its own lease.
            app.add_flag("--force", o->force,
                         "Kept for scripts: lpctl holds no lease, so kill stops the helper even while other "
                         "connections hold it (pytest sessions' shared=True, lpctl ensure --lease)");
            app.add_option("--owner", o->owner,
                           "Whose process (user name or uid), when several users have one of that name");
            return [o](const GlobalOptions& global) {
              const json fields =
                  with_owner({{"signal", o->signal}, {"grace", o->grace}, {"force", o->force}}, o->owner);
              auto connection = global.connect();
              const json result =
                  request_helper(connection, "proc.kill", o->name, o->scope, fields, kill_limit(global, o->grace));
              if (global.json) {
                print_json(result);
                return kExitOk;
              }
              // a NAME with no helper in this project reaches the
              // one helper of that name elsewhere (request_helper's
              // fallback, as ps and logs): say so before what was done.
              const std::string project = project_scope(current_directory());
              const std::string scope = result.contains("scope") && result["scope"].is_string()
                                            ? result["scope"].get<std::string>()
                                            : std::string();
              if (!o->scope && o->name.find("::") == std::string::npos && scope != project) {
                std::string whose = "the";
                if (result.contains("owner") && result["owner"].is_number_unsigned()) {
                  const auto uid = result["owner"].get<uid_t>();
                  whose = uid == ::getuid() ? "your" : owner_label(uid) + "'s";
                }
                const std::string which = scope.empty() ? o->name + " (global scope)" : result.value("full_name", o->name);
                std::printf("%s is not in this project (%s); it named %s helper %s:\n", o->name.c_str(),
                            project.c_str(), whose.c_str(), which.c_str());
              }
              print_killed(result);
              return kExitOk;
            };
          }};
}

Command kill_all_command() {
  auto o = std::make_shared<KillOptions>();
  // as pytest's --xkill, the current project's helpers of yours;
  // ones other connections hold (leases) are left running unless --force.
  return {"kill-all",
          "Stop your helper processes in this project (--all-projects: in every one) and print what was done; "
          "ones other connections hold (leases) are kept unless --force",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("-s,--signal", o->signal, "Signal to send first (default TERM)");
            app.add_option("--grace", o->grace, "Seconds before SIGKILL (default 5)")->check(CLI::NonNegativeNumber);
            app.add_option("--scope", o->scope, "Project directory whose helpers to stop (default: this project)");
            app.add_flag("--all-projects", o->all_projects, "Stop your helpers in every project and the global scope")
                ->excludes("--scope");
            app.add_option("--owner", o->owner, "Stop this user's helpers (root and lpd's admin group only)");
            app.add_flag("--force", o->force, "Stop helpers other connections hold (leases) too");
            return [o](const GlobalOptions& global) {
              json fields = with_owner({{"signal", o->signal}, {"grace", o->grace}, {"force", o->force}}, o->owner);
              if (!o->all_projects) fields["scope"] = o->scope ? *o->scope : project_scope(current_directory());
              auto connection = global.connect();
              const json result = connection.request("proc.kill_all", fields, kill_limit(global, o->grace));
              if (global.json) {
                print_json(result);
                return kExitOk;
              }
              const json none = json::array();
              const json& kept = result.contains("kept") ? result["kept"] : none;
              const json& released = result.contains("released") ? result["released"] : none;
              // the reply lists at most what fits in one line of
              // the protocol; the counts are every helper's.
              const auto count = [&](const char* kind, const json& list) {
                const auto it = result.find(std::string(kind) + "_count");
                return it != result.end() && it->is_number_unsigned() ? it->get<std::size_t>() : list.size();
              };
              const std::size_t killed_count = count("killed", result["killed"]);
              const std::size_t kept_count = count("kept", kept);
              const std::size_t released_count = count("released", released);
              if (killed_count + kept_count + released_count == 0) std::printf("nothing to kill\n");
              for (const auto& p : result["killed"]) print_killed(p);
              for (const auto& p : released) print_killed(p);
              for (const auto& p : kept)
                std::printf("kept %s (pid %d): %d other connection(s) hold it (leases); --force stops it\n",
                            p.value("full_name", p.value("name", "")).c_str(), p.value("pid", 0),
                            p.value("holders", 0));
              if (result.value("omitted", 0) > 0)
                std::printf("(%d more not listed: %zu killed, %zu released, %zu kept in all)\n",
                            result.value("omitted", 0), killed_count, released_count, kept_count);
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
