#pragma once

#include <vector>

#include "daemon/dispatcher.h"

namespace lpd::daemon {

class Daemon;

/// Every operation the daemon serves, in one explicit list: the table is the
/// single place to look to see what the protocol offers.
std::vector<Operation> operation_table(Daemon& daemon);

}  // namespace lpd::daemon
