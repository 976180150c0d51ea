#include <cstdio>
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/commands/helper_address.h"
#include "client/commands/helper_name_options.h"

namespace lpd::client {
namespace {

/// What `lpctl logs` was told.
struct LogsOptions {
  std::string name;
  long long lines = -1;  // -1: the whole log
  bool follow = false;
  std::optional<std::string> scope;
  std::optional<std::string> owner;
};

}  // namespace

Command logs_command() {
  auto o = std::make_shared<LogsOptions>();
  return {"logs", "Print a helper process's log (its current start's); -f follows it until the process ends",
          [o](CLI::App& app) -> CommandRun {
            add_helper_name_options(app, o->name, o->scope);
            app.add_option("--owner", o->owner,
                           "Whose process (user name or uid), when several users have one of that name");
            app.add_option("-n,--lines", o->lines, "Only the last N lines")->check(CLI::NonNegativeNumber);
            app.add_flag("-f,--follow", o->follow, "Keep printing as the log grows; ends when the process ends");
            return [o](const GlobalOptions& global) {
              json fields = with_owner({{"follow", o->follow}}, o->owner);
              if (o->lines >= 0) fields["lines"] = o->lines;
              auto connection = global.connect();
              const json started = request_helper(connection, "proc.logs", o->name, o->scope, fields);
              if (global.json) print_json({{"event", "proc.logs"}, {"data", started}});
              if (!global.json && started.value("skipped_bytes", 0ull) > 0) {
                std::cerr << "lpctl: logs: the first " << started["skipped_bytes"].get<unsigned long long>()
                          << " bytes of " << started.value("log_path", "the log") << " are not shown\n";
              }
              // say so when what is shown begins where the size cap cut.
              if (const auto dropped = started.value("dropped_bytes", 0ull);
                  !global.json && dropped > 0 && started.value("offset", 0ull) == dropped) {
                std::cerr << "lpctl: logs: lpd dropped the oldest " << dropped << " bytes of "
                          << started.value("log_path", "the log") << " (its size cap, lpd start --helper-log-max)\n";
              }
              for (;;) {
                // The daemon ends the stream; nothing to time out on our side.
                auto push = connection.next_push(std::nullopt);
                if (!push) continue;
                const std::string event = push->value("event", "");
                const json& data = (*push)["data"];
                if (global.json) print_json(*push);
                if (event == "proc.log" && !global.json) {
                  const std::string& text = data["data"].get_ref<const std::string&>();
                  std::fwrite(text.data(), 1, text.size(), stdout);
                  if (o->follow) std::fflush(stdout);
                } else if (event == "proc.log_end") {
                  break;
                }
              }
              std::fflush(stdout);
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
