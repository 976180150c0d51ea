#include "client/cli.h"
#include "client/commands/commands.h"

namespace lpd::client {

std::vector<Command> command_table() {
  return {
      status_command(),
      ping_command(),
      ls_command(),
      watch_command(),
      resume_command(),
      run_command(),
      attach_command(),
      runs_command(),
      stop_command(),
      events_command(),
      crashes_command(),
      prune_command(),
      report_command(),
      ensure_command(),
      ps_command(),
      logs_command(),
      kill_command(),
      kill_all_command(),
      dashboard_command(),
  };
}

}  // namespace lpd::client
