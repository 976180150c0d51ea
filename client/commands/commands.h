#pragma once

#include "client/cli.h"

namespace lpd::client {

// One factory per lpctl command; each lives in its own file under commands/.
Command status_command();
Command ping_command();

}  // namespace lpd::client
