#pragma once

#include "client/cli.h"

namespace lpd::client {

// One factory per lpctl command; each lives in its own file under commands/.
Command status_command();
Command ping_command();
Command ls_command();
Command watch_command();
Command resume_command();
Command runs_command();
// supervised helper processes (issue 4)
Command ensure_command();
Command ps_command();
Command logs_command();
Command kill_command();
Command kill_all_command();

}  // namespace lpd::client
