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

}  // namespace lpd::client
