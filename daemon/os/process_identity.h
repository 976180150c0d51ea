#pragma once

// A process is known by its pid and its start time (a pid alone can be
// reused). The one reading of /proc/PID/stat and the three-valued liveness
// rule (alive, gone or reused, unknown) live with the process supervisor,
// in daemon/os/proc_stat.h; pin_process in daemon/os/pidfd_watch.h
// takes a pidfd and checks with the pid pinned. This header keeps the
// daemon-level callers (pauses, runs) pointing at them.
#include "daemon/os/pidfd_watch.h"
#include "daemon/os/proc_stat.h"
