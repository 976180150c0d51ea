// lpctl prune: remove ended runs past the retention limits, now.
#include <cstdio>
#include <iostream>
#include <optional>

#include "client/cli.h"
#include "client/commands/commands.h"

namespace lpd::client {

Command prune_command() {
  struct Options {
    bool dry_run = false;
    std::optional<std::int64_t> keep_runs;
    std::optional<double> keep_days;
    bool all = false;
  };
  auto o = std::make_shared<Options>();
  return {"prune",
          "Remove ended runs (their directories, crash records and events) past the limits: yours, or everyone's "
          "for root and the admin group",
          [o](CLI::App& app) -> CommandRun {
            app.add_flag("-n,--dry-run", o->dry_run, "Only list what would be removed");
            auto* keep_runs = app.add_option("--keep-runs", o->keep_runs,
                                             "Keep this many runs per user (default: lpd's --keep-runs; 0 = no "
                                             "limit: keep them all)")
                                  ->check(CLI::NonNegativeNumber);
            auto* keep_days = app.add_option("--keep-days", o->keep_days,
                                             "Keep ended runs younger than this many days (default: lpd's "
                                             "--keep-days; 0 = no limit: keep them all)")
                                  ->check(CLI::NonNegativeNumber);
            app.add_flag("--all", o->all,
                         "Remove every ended run (yours; everyone's for root and the admin group), whatever the "
                         "limits; active runs are never removed")
                ->excludes(keep_runs)
                ->excludes(keep_days);
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = {{"dry_run", o->dry_run}};
              if (o->keep_runs) fields["keep_runs"] = *o->keep_runs;
              if (o->keep_days) fields["keep_days"] = *o->keep_days;
              if (o->all) fields["all"] = true;
              std::size_t listed = 0;
              int failed = 0;
              for (;;) {
                // Each call removes a bounded number of runs; "more" asks again.
                const json reply = connection.request("prune", fields, std::chrono::milliseconds(0));
                for (const auto& r : reply.value("runs", json::array())) {
                  if (global.json) {
                    print_json(r);
                  } else {
                    std::printf("%s %s%s\n", o->dry_run ? "would remove" : "removed", r.value("run_id", "").c_str(),
                                r.contains("error") ? (" (" + r.value("error", "") + ")").c_str() : "");
                    std::fflush(stdout);
                  }
                  if (r.contains("error")) ++failed;
                  ++listed;
                }
                if (!reply.value("more", false)) break;
                // A dry run removes nothing: its next page starts past what it listed.
                if (o->dry_run) fields["skip"] = listed;
              }
              if (!global.json && listed == 0) std::cout << "nothing to prune" << std::endl;
              return failed ? kExitFailed : kExitOk;
            };
          }};
}

}  // namespace lpd::client
