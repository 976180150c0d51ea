#pragma once

#include <optional>
#include <string>

#include <sys/types.h>

#include "daemon/os/launcher.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// What a pause directory agent needs: the directory a user named with
/// --pause-dir (absolute), the run it mirrors, and who it acts as.
struct PauseDirSetup {
  std::string path;
  std::string run_id;
  /// The user whose directory it is (the peer that asked): a root lpd's
  /// agent takes their uid, gid and groups as its effective identity.
  /// nullopt (or an lpd that is not root): lpd's own identity.
  std::optional<Credentials> who;
};

/// A started agent: its pid (lpd's child: reap it) and lpd's end of the
/// socketpair (close-on-exec, non-blocking) that carries its messages.
struct PauseDirAgent {
  pid_t pid = -1;
  UniqueFd socket;
};

/// Forks the process that does every file operation in one run's pause
/// directory, so lpd itself never touches a directory a user controls:
/// the kernel checks each operation against the user's identity (a root
/// lpd cannot be made to write or read anything the user could not), and
/// a directory that never answers (a user's FUSE mount) holds the agent,
/// not lpd's one thread.
///
/// The agent keeps only the socketpair's other end (no other descriptor of
/// lpd's), takes `who`'s effective ids (real ids stay lpd's, as in
/// check_as, so the user cannot signal or trace it), creates DIR (0700,
/// missing parents too), DIR/runs/<run_id>/, its pauses/ and commands/,
/// opening each with O_DIRECTORY|O_NOFOLLOW relative to its parent's
/// descriptor and refusing one another user owns or may write (root's
/// sticky /tmp is allowed as DIR itself). Then it says
/// {"op":"ready","run_dir":...} or {"op":"failed","code":...,"message":...}.
///
/// Afterwards, one JSON object per line each way. From lpd:
/// {"op":"write","where":"run"|"pauses","name","text"} (temp file, then
/// rename: never through a link, never into a FIFO), {"op":"append","name",
/// "text"} (O_APPEND|O_NOFOLLOW|O_NONBLOCK, regular files only),
/// {"op":"remove","name"} (a command file it applied). To lpd: each
/// `<pause_id>.resume.json` that appears in commands/ (inotify:
/// IN_CLOSE_WRITE, IN_MOVED_TO; all of them at start and after a queue
/// overflow) as {"op":"command","name","text"} or, when it cannot be read
/// (a link, a FIFO, over kMaxPauseCommandBytes), {"op":"command","name",
/// "error"}; and {"op":"error","message"} for a write that failed. It ends
/// when lpd closes its end. Throws std::system_error when the socketpair or
/// the fork fails.
PauseDirAgent start_pause_dir_agent(const PauseDirSetup& setup);

}  // namespace lpd::daemon
