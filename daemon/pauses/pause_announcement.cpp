#include "daemon/pauses/pause_announcement.h"

#include <cmath>
#include <cstdio>

#include "client/terminal_text.h"
#include "daemon/os/leftover_test.h"  // printable_utf8

namespace lpd::daemon {

namespace {

bool plain_shell_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("_-./:@%+=,").find(c) != std::string_view::npos;
}

/// "300", "2.5", "0.25": seconds as a person writes them.
std::string seconds_text(double seconds) {
  char buf[32];
  if (std::isfinite(seconds) && seconds == std::floor(seconds) && std::fabs(seconds) < 1e15)
    std::snprintf(buf, sizeof(buf), "%.0f", seconds);
  else
    std::snprintf(buf, sizeof(buf), "%.3g", seconds);
  return buf;
}

/// "gw0 " for an xdist worker; "" for a controller or a plain pytest.
std::string worker_prefix(const Pause& pause) {
  if (pause.worker_id.empty() || pause.worker_id == "controller") return "";
  return terminal_line(pause.worker_id, 64) + " ";
}

std::string nodeid_text(const Pause& pause) {
  return pause.nodeid.empty() ? "(no test)" : terminal_line(pause.nodeid, kAnnouncedNodeidBytes);
}

std::string decision_text(const Pause& pause) {
  if (pause.kind == PauseKind::kFailure) {
    if (pause.decision.failure_reason.empty()) return "no failure reason given";
    return "failure reason: " + terminal_line(pause.decision.failure_reason, kAnnouncedTextBytes);
  }
  std::string text = "result ";
  text += pause.decision.result ? (*pause.decision.result ? "true" : "false") : "none";
  if (!pause.decision.reason.empty()) text += ": " + terminal_line(pause.decision.reason, kAnnouncedTextBytes);
  return text;
}

}  // namespace

std::string shell_word(std::string_view word) {
  bool plain = !word.empty();
  for (char c : word) plain = plain && plain_shell_char(c);
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

std::string terminal_line(std::string_view text, std::size_t max_bytes) {
  const auto end = text.find_first_of("\r\n");
  // printable_utf8 keeps C1 controls (U+0080..U+009F, bytes C2 80..C2 9F):
  // some terminals act on them (U+009B is CSI), so they go too, by lpctl's
  // own rule for text it shows.
  std::string out = client::terminal_text(printable_utf8(text.substr(0, end), max_bytes));
  const bool already_cut = out.size() >= 3 && out.compare(out.size() - 3, 3, "...") == 0;
  if (end != std::string_view::npos && !already_cut) out += " ...";  // more lines follow: say so
  return out;
}

std::string socket_option(const std::string& socket_path, const std::string& default_for_owner) {
  if (socket_path.empty() || socket_path == default_for_owner) return "";
  return "--socket " + shell_word(socket_path);
}

std::string resume_command(const Pause& pause, std::string_view socket_option) {
  std::string command = "lpctl ";
  if (!socket_option.empty()) command += std::string(socket_option) + " ";
  command += "resume " + shell_word(pause.pause_id);
  if (pause.kind == PauseKind::kCheckpoint) command += " --result true";
  return command;
}

std::string pause_announcement(std::string_view event, const Pause& pause, std::string_view socket_option) {
  const std::string who = "lpd: " + worker_prefix(pause);
  const std::string test = nodeid_text(pause);
  const std::string id = terminal_line(pause.pause_id, 64);
  if (event == "pause.created") {
    std::string line = who + "PAUSED " + test;
    if (pause.kind == PauseKind::kFailure) {
      line += " after failing";
      if (!pause.original_failure.empty())
        line += ": " + terminal_line(pause.original_failure, kAnnouncedTextBytes);
    } else {
      line += " at a checkpoint";
      if (!pause.task.empty()) line += ": " + terminal_line(pause.task, kAnnouncedTextBytes);
    }
    // What else the command takes is said here, not after it on its line:
    // options typed after a pasted "# comment" would silently do nothing.
    line += " (pause " + id + ", times out in " + seconds_text(pause.timeout) + " s; " +
            (pause.kind == PauseKind::kFailure ? "add --failure-reason TEXT to say why"
                                               : "decide with --result true|false|none [--reason TEXT]") +
            ")";
    return line + "\nlpd:   resume: " + resume_command(pause, socket_option);
  }
  if (event == "pause.resumed") return who + "resumed " + test + " (pause " + id + "; " + decision_text(pause) + ")";
  if (event == "pause.timed_out") {
    return who + "pause " + id + " of " + test + " timed out after " + seconds_text(pause.timeout) + " s; " +
           (pause.kind == PauseKind::kFailure ? "the test goes on to its teardown"
                                              : "the checkpoint returns result none");
  }
  if (event == "pause.stale") {
    return who + "pause " + id + " of " + test + " is stale: its test process (pid " + std::to_string(pause.pid) +
           ") died while paused";
  }
  return "";
}

}  // namespace lpd::daemon
