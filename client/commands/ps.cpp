#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "client/terminal_text.h"
#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/commands/helper_address.h"

namespace lpd::client {
namespace {

/// "-" while running, "code 3", "SIGTERM", "unknown".
std::string exit_column(const json& p) {
  const json& exit = p.contains("exit_status") ? p["exit_status"] : json(nullptr);
  if (!exit.is_object()) return "-";
  if (!exit.value("known", false)) return "unknown";
  if (exit.contains("signal") && exit["signal"].is_number()) {
    const std::string description = exit.value("description", "");
    const auto open = description.find('(');
    if (open != std::string::npos) return description.substr(open + 1, description.size() - open - 2);
    return "signal " + std::to_string(exit["signal"].get<int>());
  }
  return exit.contains("code") && exit["code"].is_number() ? "code " + std::to_string(exit["code"].get<int>()) : "-";
}

/// the states in which lpd's record says the helper runs.
bool is_running_state(const std::string& state) {
  return state == "starting" || state == "ready" || state == "stopping";
}

}  // namespace

Command ps_command() {
  auto all = std::make_shared<bool>(false);
  auto owner = std::make_shared<std::optional<std::string>>();
  return {"ps", "List supervised helper processes: name, owner, scope, pid, state, holders, uptime, exit status, log, pattern",
          [all, owner](CLI::App& app) -> CommandRun {
            app.add_flag("-a,--all", *all, "Include processes that have ended (exited, killed, lost)");
            app.add_option("--owner", *owner, "Only the processes of this user (name or uid)");
            return [all, owner](const GlobalOptions& global) {
              json fields = with_owner({{"all", *all}}, *owner);  // an unknown user is refused before connecting
              auto connection = global.connect();
              // proc.list answers a page at a time (each well
              // under the protocol's line limit); the pages are joined
              // here, so ps and --json show every record. An lpd from
              // before paging sends no "next": its one reply was all.
              json result = {{"processes", json::array()}};
              json& list = result["processes"];
              for (;;) {
                json page = connection.request("proc.list", fields);
                for (auto& p : page["processes"]) list.push_back(std::move(p));
                const auto next = page.find("next");
                if (next == page.end() || !next->is_object()) break;
                fields["after"] = *next;
              }
              if (global.json) {
                print_json(result);
                return kExitOk;
              }
              if (list.empty()) {
                std::cout << (*all ? "no supervised processes" : "no running supervised processes")
                          << (*owner ? " of " + **owner : std::string()) << (*all ? "\n" : " (-a shows ended ones)\n");
                return kExitOk;
              }
              std::vector<std::vector<std::string>> rows{
                  {"NAME", "OWNER", "SCOPE", "PID", "STATE", "HOLDERS", "UPTIME", "EXIT", "LOG", "PATTERN"}};
              std::map<uid_t, std::string> owners;  // one lookup per uid
              const std::string cwd = current_directory();
              for (const auto& p : list) {
                // Another user's helper comes without its scope (metadata only).
                const std::string scope =
                    p.contains("scope") && p["scope"].is_string() ? shown_scope(p["scope"], cwd) : "?";
                const std::string holders =
                    p.value("leased", false) || p.value("holders", 0) > 0 ? std::to_string(p.value("holders", 0)) : "-";
                const std::string pattern =
                    p.contains("pattern") && p["pattern"].is_string() ? p["pattern"].get<std::string>() : "-";
                std::string owner_shown = "?";
                if (p.contains("owner") && p["owner"].is_number_unsigned()) {
                  const auto uid = p["owner"].get<uid_t>();
                  auto it = owners.find(uid);
                  if (it == owners.end()) it = owners.emplace(uid, owner_label(uid)).first;
                  owner_shown = it->second;
                }
                // a helper whose leader exited while its tree runs on.
                std::string state = p.value("state", "");
                if (!is_running_state(state) && p.value("tree_running", false)) state += " (tree runs)";
                // a start that failed (timeout, line limit) but left it running.
                if (state == "starting" && p.contains("failure") && p["failure"].is_string()) state = "not_ready";
                rows.push_back({p.value("name", ""), owner_shown, scope, std::to_string(p.value("pid", 0)), state,
                                holders, format_duration(p.value("uptime_seconds", 0.0)), exit_column(p),
                                p.value("log_path", ""), pattern});
              }
              // Names, scopes and argv come from other users: shown, never obeyed by the terminal.
              for (auto& row : rows)
                for (auto& cell : row) cell = terminal_text(cell);
              std::vector<std::size_t> widths(rows.front().size(), 0);
              for (const auto& row : rows)
                for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
              for (const auto& row : rows) {
                std::string line;
                for (std::size_t i = 0; i < row.size(); ++i) {
                  line += row[i];
                  if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
                }
                std::cout << line << "\n";
              }
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
