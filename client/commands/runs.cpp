// lpctl runs: the runs lpd knows, a page at a time.
#include <cstdio>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/paged_listing.h"
#include "client/terminal_text.h"

namespace lpd::client {

Command runs_command() {
  auto all = std::make_shared<bool>(false);
  return {"runs", "List active runs (-a: also ended ones), oldest first", [all](CLI::App& app) -> CommandRun {
            app.add_flag("-a,--all", *all, "Include ended runs");
            return [all](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = {{"all", *all}};
              PagedListing listing;
              listing.op = "run.list";
              listing.items = "runs";
              listing.run_width_at_least = 24;
              listing.is_cursor = [](const json& next) { return next.is_object(); };
              listing.print_header = [](int run_width) {
                std::printf("%-*s  %-7s  %-8s  %-7s  %-4s  %-7s  %s\n", run_width, "RUN", "STATUS", "PID", "WORKERS",
                            "EXIT", "RESULT", "CWD");
              };
              listing.print_row = [](const json& r, int run_width) {
                // "-" when lpd does not know the pid (null, or 0 from an older lpd).
                const auto pid = r.find("pid");
                const std::string pid_shown = pid != r.end() && pid->is_number_integer() && pid->get<long long>() > 0
                                                  ? std::to_string(pid->get<long long>())
                                                  : "-";
                // How a supervised run ended; "-" while it runs, or when no one saw it end.
                const auto rc = r.find("returncode");
                const std::string exit_shown =
                    rc != r.end() && rc->is_number_integer() ? std::to_string(rc->get<long long>()) : "-";
                const auto result = r.find("result");
                const std::string result_shown =
                    result != r.end() && result->is_string() && !result->get_ref<const std::string&>().empty()
                        ? result->get<std::string>()
                        : "-";
                // A cwd (any directory name a user chose) is shown, never obeyed by the terminal.
                std::printf("%-*s  %-7s  %-8s  %-7zu  %-4s  %-7s  %s\n", run_width,
                            terminal_text(r.value("run_id", "")).c_str(), terminal_text(r.value("status", "")).c_str(),
                            pid_shown.c_str(), r.value("workers", json::array()).size(), exit_shown.c_str(),
                            terminal_text(result_shown).c_str(), terminal_text(r.value("cwd", "")).c_str());
              };
              listing.none = *all ? "no runs" : "no active runs";
              return print_paged_listing(connection, fields, listing, global.json);
            };
          }};
}

}  // namespace lpd::client
