#pragma once

#include <vector>

#include "daemon/core/operation.h"

namespace lpd::daemon {

class Daemon;

/// Every operation the daemon serves, in one explicit list, with the gate
/// each passes (and how to find the owner of the object it names) and the
/// daemon's access policy: the single place to look to see what the
/// protocol offers and to whom.
OperationTable operation_table(Daemon& daemon);

}  // namespace lpd::daemon
