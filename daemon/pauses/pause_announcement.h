#pragma once

#include <string>
#include <string_view>

#include "daemon/pauses/pause.h"

// the lines a terminal shows when a pause starts or
// ends. Built here, once, and sent as the pause events' `announcement`
// field, so that every front end prints the very same text: the pytest
// process that owns the terminal (an xdist controller, or a plain pytest)
// and `lpctl run`. Plain rules over data: no I/O, no clock.

namespace lpd::daemon {

/// How many bytes of a failure's (or a checkpoint task's) first line a
/// terminal line shows: enough to recognise it, short enough for one line.
inline constexpr std::size_t kAnnouncedTextBytes = 200;
/// How many bytes of a nodeid a terminal line shows.
inline constexpr std::size_t kAnnouncedNodeidBytes = 1024;

/// `word` as one shell word that sh reads back as exactly `word`: as is
/// when it holds only characters no shell treats specially, else in single
/// quotes (a quote inside becomes '\'' ). Empty gives ''.
std::string shell_word(std::string_view word);

/// The first line of `text` (up to its first CR or LF), safe to print on a
/// terminal: control characters (C0, DEL, C1) and invalid UTF-8 become
/// '?', so no escape sequence from a test reaches the terminal; at most
/// `max_bytes`, then "..." (never cut inside a character).
std::string terminal_line(std::string_view text, std::size_t max_bytes);

/// The global option a pasted `lpctl` command needs to reach this daemon:
/// "" when `socket_path` is where lpctl of `owner` looks by default, else
/// "--socket PATH" (quoted for the shell). `default_for_owner` is lpctl's
/// default for that user without $LPD_SOCKET (protocol::default_socket_path):
/// a terminal that pastes the command need not have lpd's environment.
std::string socket_option(const std::string& socket_path, const std::string& default_for_owner);

/// The command that resumes `pause` as is, for pasting into a shell (or
/// `sh -c`): `lpctl [--socket PATH] resume ID`, plus `--result true` for a
/// checkpoint (which takes a decision). Nothing follows it on its line, so
/// options typed after it are taken (a failure reason, another result).
std::string resume_command(const Pause& pause, std::string_view socket_option);

/// The announcement of pause event `event` ("pause.created", "pause.resumed",
/// "pause.timed_out", "pause.stale") for `pause` as it is after the event:
/// lines joined by '\n', no final newline, each starting "lpd: ". Created:
/// who paused where and why (and what else the command takes), then the
/// resume command on a line of its own ("lpd:   resume: COMMAND"). The
/// others: one line with the outcome.
/// "" for any other event.
std::string pause_announcement(std::string_view event, const Pause& pause, std::string_view socket_option);

}  // namespace lpd::daemon
