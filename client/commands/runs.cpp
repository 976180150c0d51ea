// lpctl runs: the runs lpd knows, a page at a time.
#include <cstdio>
#include <iostream>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/table_width.h"
#include "client/terminal_text.h"

namespace lpd::client {

Command runs_command() {
  auto all = std::make_shared<bool>(false);
  return {"runs", "List active runs (-a: also ended ones), oldest first", [all](CLI::App& app) -> CommandRun {
            app.add_flag("-a,--all", *all, "Include ended runs");
            return [all](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = {{"all", *all}};
              // run.list answers a page at a time, each well under the
              // protocol's line limit; each page is printed as it arrives.
              // --json stays one JSON array, written piece by piece.
              std::size_t printed = 0;
              int run_width = 24;  // grows with a page of longer (named) run ids; never shrinks
              for (;;) {
                const json page = connection.request("run.list", fields);
                run_width = column_width(page.value("runs", json::array()), "run_id", run_width);
                for (const auto& r : page.value("runs", json::array())) {
                  if (global.json) {
                    std::cout << (printed == 0 ? "[" : ",") << r.dump(-1, ' ', false, json::error_handler_t::replace);
                  } else {
                    if (printed == 0)
                      std::printf("%-*s  %-7s  %-8s  %-7s  %-4s  %-7s  %s\n", run_width, "RUN", "STATUS", "PID",
                                  "WORKERS", "EXIT", "RESULT", "CWD");
                    // "-" when lpd does not know the pid (null, or 0 from an older lpd).
                    const auto pid = r.find("pid");
                    const std::string pid_shown = pid != r.end() && pid->is_number_integer() && pid->get<long long>() > 0
                                                      ? std::to_string(pid->get<long long>())
                                                      : "-";
                    // how a supervised run ended; "-" while it runs, or when no one saw it end.
                    const auto rc = r.find("returncode");
                    const std::string exit_shown = rc != r.end() && rc->is_number_integer()
                                                       ? std::to_string(rc->get<long long>())
                                                       : "-";
                    const auto result = r.find("result");
                    const std::string result_shown = result != r.end() && result->is_string() &&
                                                             !result->get_ref<const std::string&>().empty()
                                                         ? result->get<std::string>()
                                                         : "-";
                    // A cwd (any directory name a user chose) is shown, never obeyed by the terminal.
                    std::printf("%-*s  %-7s  %-8s  %-7zu  %-4s  %-7s  %s\n", run_width,
                                terminal_text(r.value("run_id", "")).c_str(), terminal_text(r.value("status", "")).c_str(),
                                pid_shown.c_str(), r.value("workers", json::array()).size(), exit_shown.c_str(),
                                terminal_text(result_shown).c_str(), terminal_text(r.value("cwd", "")).c_str());
                  }
                  ++printed;
                }
                std::cout.flush();
                std::fflush(stdout);
                const auto next = page.find("next");
                // An lpd from before paging sends no cursor: its one reply was everything.
                if (next == page.end() || !next->is_object()) break;
                fields["after"] = *next;
              }
              if (global.json)
                std::cout << (printed == 0 ? "[" : "") << "]" << std::endl;
              else if (printed == 0)
                std::cout << (*all ? "no runs" : "no active runs") << std::endl;
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
