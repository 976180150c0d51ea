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
      runs_command(),
  };
}

}  // namespace lpd::client
