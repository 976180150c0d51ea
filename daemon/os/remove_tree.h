#pragma once

#include <string>

namespace lpd::daemon {

/// Removes directory `name` of directory `parent_fd` and everything in it,
/// as `rm -r --one-file-system` would, but never following a link: each
/// directory is opened O_NOFOLLOW|O_DIRECTORY relative to its parent and
/// emptied with unlinkat(), so a symbolic link planted anywhere inside
/// (by the run's user, who owns files there) is removed itself and its
/// target is left alone, and a directory swapped for a link mid-way is
/// refused rather than entered. Recursion stops at `max_depth` levels.
/// Returns "" when the tree is gone (or was absent), else what stopped it
/// ("runs/x/y: Permission denied"), having removed what it could.
std::string remove_tree_at(int parent_fd, const std::string& name, int max_depth = 16);

}  // namespace lpd::daemon
