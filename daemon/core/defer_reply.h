#pragma once

#include <functional>

#include "daemon/core/operation.h"

namespace lpd::daemon {

/// How a family's typed service answers later without seeing the Call: it
/// calls this once, when it decides the reply waits (the ops file passes
/// Call::defer; a unit test, a Responder on a sink of its own).
using DeferReply = std::function<Responder()>;

}  // namespace lpd::daemon
