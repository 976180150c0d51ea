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
Command run_command();
Command attach_command();
Command stop_command();
Command report_command();
Command events_command();
Command crashes_command();
Command prune_command();  // retention
// supervised helper processes
Command ensure_command();
Command ps_command();
Command logs_command();
Command kill_command();
Command kill_all_command();
Command dashboard_command();  // your own HTTP token and URL

}  // namespace lpd::client
