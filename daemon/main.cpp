// lpd: the daemon. `lpd start` runs it; everything else talks to it over its socket.
#include <fcntl.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "client/cli_hints.h"
#include "daemon/daemon.h"
#include "daemon/http/http_listen.h"
#include "daemon/core/directory_trust.h"
#include "daemon/core/unique_fd.h"
#include "daemon/host/logging.h"
#include "daemon/host/readiness.h"
#include "daemon/host/stop_command.h"
#include "daemon/host/stop_rules.h"
#include "daemon/os/heap_trim.h"
#include "protocol/paths.h"
#include "protocol/version.h"

namespace {

using lpd::daemon::DaemonConfig;
using lpd::daemon::Readiness;

void redirect_stdio_to_dev_null() {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return;
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(null_fd, STDOUT_FILENO);
  ::dup2(null_fd, STDERR_FILENO);
  if (null_fd > STDERR_FILENO) ::close(null_fd);  // one of 0-2 (they were closed) stays: it is a standard stream now
}

int run_daemon(const DaemonConfig& config, Readiness& readiness) {
  // Before the first log line: `lpd start --foreground 2>&1 | tee` whose
  // reader goes away (a log shipper restarted) must cost lpd its log on
  // stderr, not its life. Children get the default back (Launcher).
  std::signal(SIGPIPE, SIG_IGN);
  // Private from the first file on, whatever umask the shell that ran
  // `lpd start` had: lpd.log and the state tree hold every user's argv,
  // paths and output (files 0600, directories 0711; see Daemon::Daemon).
  ::umask(S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH);
  // A state directory that is there already is judged before lpd.log is
  // opened in it: another user's directory could hold an lpd.log linked to
  // a file of the user starting lpd (root's, for a system lpd), and the
  // log's first lines would be appended there before Daemon refused it.
  if (struct stat st {}; ::lstat(config.state_dir.c_str(), &st) == 0) {
    try {
      lpd::daemon::require_trusted_directory(config.state_dir, /*allow_shared_sticky=*/false);
    } catch (const std::exception& e) {
      // No log yet: in the foreground (systemd's unit) stderr is where the
      // reason must go; in the background the waiting parent prints it.
      if (config.foreground) std::cerr << "lpd: " << e.what() << std::endl;
      readiness.failed(e.what());
      return 1;
    }
  }
  try {
    lpd::daemon::setup_logging(config.foreground, config.state_dir, config.log_level);
  } catch (const std::exception& e) {
    // Most likely the state directory is not writable; the daemon cannot log.
    if (config.foreground) std::cerr << "lpd: cannot open log: " << e.what() << std::endl;
    readiness.failed(std::string("cannot open log: ") + e.what());
    return 1;
  }
  lpd::daemon::keep_freed_heap_for_reuse();
  lpd::daemon::Daemon daemon(config);
  return daemon.run(readiness);
}

/// Forks twice so the daemon is not a session leader and not our child, and
/// returns in the parent only once the daemon reported ready or failed.
int start_in_background(const DaemonConfig& config) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("lpd: pipe");
    return 1;
  }
  lpd::daemon::UniqueFd read_end(pipe_fds[0]);
  lpd::daemon::UniqueFd write_end(pipe_fds[1]);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("lpd: fork");
    return 1;
  }
  if (child > 0) {
    write_end.reset();  // the daemon's copy is the only writer: its end is our end of file
    const auto report = lpd::daemon::wait_for_readiness(read_end.get());
    int ignored;
    ::waitpid(child, &ignored, 0);
    if (report.ready) {
      std::cout << "lpd started (pid " << report.pid << ") on " << config.socket_path << "\n"
                << "state: " << config.state_dir << ", log: " << config.state_dir << "/lpd.log\n";
      return 0;
    }
    if (!report.error.empty())
      std::cerr << "lpd: " << report.error << "\n";
    else
      std::cerr << "lpd: the daemon exited during startup; see " << config.state_dir << "/lpd.log\n";
    return 1;
  }
  read_end.reset();
  ::setsid();
  const pid_t grandchild = ::fork();
  if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
  if (::chdir("/") != 0) ::_exit(1);
  redirect_stdio_to_dev_null();
  // What the shell that ran `lpd start` left open (a CI runner's output
  // pipe as fd 7, say) is not the daemon's: held, that pipe would not end
  // until lpd did, and the CI step would hang waiting for it.
  lpd::daemon::close_inherited_descriptors(write_end.get());
  Readiness readiness(write_end.release());
  return run_daemon(config, readiness);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lpd: supervisor daemon for test processes.\n"
               "Spawns and tracks test runs and helper servers, holds live pauses and crash records,\n"
               "and serves lpctl and the in-test shims over a Unix socket."};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print lpd's version and protocol version, then exit");

  DaemonConfig config;
  int ready_fd = -1;
  auto* start = app.add_subcommand("start", "Start the daemon (in the background unless --foreground)");
  start->add_flag("--foreground", config.foreground, "Stay in the foreground and log to stderr");
  start->add_option("--socket", config.socket_path,
                    "Socket path (default: $LPD_SOCKET, else /run/lpd/lpd.sock for root, "
                    "else $XDG_RUNTIME_DIR/lpd/lpd.sock, else /tmp/lpd-$UID/lpd.sock)");
  start->add_option("--state-dir", config.state_dir,
                    "State directory (default: /var/lib/lpd for root, else $XDG_STATE_HOME/lpd "
                    "or ~/.local/state/lpd)");
  start->add_option("--log-level", config.log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->default_str("info");
  std::string admin_group;
  start->add_option("--admin-group", admin_group,
                    "Members of this group may act on every user's runs, pauses and processes (like root)");
  start->add_option("--socket-group", config.socket_group,
                    "As root: give the socket to this group (mode 0660), so only its members can connect "
                    "(default: lpd, if that group exists)");
  double hello_timeout_seconds = 10;
  start->add_option("--hello-timeout", hello_timeout_seconds,
                    "Seconds a new connection may take to send hello before it is closed (default 10)")
      ->check(CLI::Range(0.01, 3600.0));
  start->add_option("--connections-per-user-max", config.connections_per_user,
                    "Connections one user other than root may hold open at once (each pytest process holds two "
                    "or three): past it lpd answers a new one limit_exceeded and closes it; 0 = no limit")
      ->default_val(1024);
  start->add_option("--keep-runs", config.retention.keep_runs,
                    "Keep at most this many runs per user: each user's older ended runs are removed, with their "
                    "directories, crash records and events, at start, when a run ends and hourly; active runs "
                    "never; one user's runs never push out another's (0 = no limit)")
      ->default_val(lpd::daemon::RetentionLimits::kDefaultKeepRuns);
  start->add_option("--keep-days", config.retention.keep_days,
                    "Remove ended runs (and events of no run) older than this many days (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->default_val(lpd::daemon::RetentionLimits::kDefaultKeepDays);
  // the helper log cap.
  auto bytes_or_zero = [](const std::string& text) -> std::string {
    try {
      std::size_t used = 0;
      const auto n = std::stoull(text, &used);
      if (used != text.size()) return "must be a number of bytes";
      if (n != 0 && n < lpd::daemon::HelperLogLimits::kMinBytes)
        return "must be 0 (no limit) or at least " + std::to_string(lpd::daemon::HelperLogLimits::kMinBytes);
      return {};
    } catch (const std::exception&) {
      return "must be a number of bytes";
    }
  };
  start->add_option("--helper-log-max", config.helper_logs.per_log,
                    "Disk space one helper log (lpctl ensure, proc.ensure) may use, in bytes: past it, its oldest "
                    "output is freed (down to half of it) while the helper writes on; 0 = no limit")
      ->check(CLI::Validator(bytes_or_zero, "BYTES"))
      ->default_val(lpd::daemon::HelperLogLimits::kDefaultPerLog);
  start->add_option("--helper-logs-per-user-max", config.helper_logs.per_owner,
                    "Disk space all helper logs of one user may use together, logs of earlier starts included: "
                    "past it, that user's least recently written ended logs go first, then the running ones are "
                    "cut; 0 = no limit")
      ->check(CLI::Validator(bytes_or_zero, "BYTES"))
      ->default_val(lpd::daemon::HelperLogLimits::kDefaultPerOwner);
  start->add_option("--helpers-per-user-max", config.helper_logs.helpers_per_owner,
                    "Helper records (running or ended) one user other than root may have: ended ones are forgotten, "
                    "oldest first, to make room; a start past it with all running is refused; 0 = no limit")
      ->default_val(lpd::daemon::HelperLogLimits::kDefaultHelpersPerOwner);
  // the run output cap (same rules as the helper log cap).
  start->add_option("--run-output-max", config.run_output.per_run,
                    "Disk space one run's output log (lpctl run, runs/ID/output.log) may use, in bytes: past it, "
                    "lpd frees its middle while the command writes on, keeping its first lines (an eighth of "
                    "this, at most 1 MiB) and its newest (down to half of this); readers are told how many bytes "
                    "were dropped; 0 = no limit")
      ->check(CLI::Validator(bytes_or_zero, "BYTES"))
      ->default_val(lpd::daemon::RunOutputLimits::kDefaultPerRun);
  start->add_option("--run-outputs-per-user-max", config.run_output.per_owner,
                    "Disk space the output logs of all of one user's kept runs may use together: past it, the "
                    "least recently written ended runs' outputs are emptied first, then the running ones cut; "
                    "0 = no limit")
      ->check(CLI::Validator(bytes_or_zero, "BYTES"))
      ->default_val(lpd::daemon::RunOutputLimits::kDefaultPerOwner);
  // the event journal cap.
  start->add_option("--run-events-max", config.run_events.per_run,
                    "Disk space one run's events journal (runs/ID/events.jsonl, and its copy in lpd's events "
                    "journal) may use, in bytes: past it, lpd keeps no more of that run's events on disk (they are "
                    "still sent live, and its report stays complete unless lpd restarts before the run ends); "
                    "0 = no limit")
      ->check(CLI::Validator(bytes_or_zero, "BYTES"))
      ->default_val(lpd::daemon::JournalLimits::kDefaultPerRun);
  start->add_option("--run-events-per-user-max", config.run_events.per_owner,
                    "Disk space the events journals of all of one user's kept runs may use together: past it, that "
                    "user's oldest ended runs are removed (as --keep-runs would), and while the running ones alone "
                    "are past it they keep no more events on disk; the user's events of no run (helpers' "
                    "process.* events) within --keep-days may take as much again; 0 = no limit")
      ->check(CLI::Validator(bytes_or_zero, "BYTES"))
      ->default_val(lpd::daemon::JournalLimits::kDefaultPerOwner);
  // -- the HTTP and WebSocket API --
  start->add_option("--http", config.http_listen,
                    "Also serve the HTTP and WebSocket API (pytest-relay-run's /jobs, /api/op/OP, /ws) and the "
                    "dashboard on ADDR:PORT, e.g. 127.0.0.1:8080 (port 0: any free port; `lpctl status` or the "
                    "status op tells which). Each user gets a token of their own from `lpctl dashboard` (the URL to open "
                    "and the token; a request with it acts as that user, with their rights on the socket) and sends "
                    "it as \"Authorization: Bearer TOKEN\"; lpd's own user's is also in <state-dir>/http.token. Off "
                    "unless given")
      ->type_name("ADDR:PORT");
  start->add_flag("--http-allow-remote", config.http_allow_remote,
                  "Let --http listen on an address that is not loopback (plain HTTP: put a TLS proxy in front)");
  start->add_option("--ready-fd", ready_fd,
                    "With --foreground: write \"READY <pid>\" (or \"ERROR <why>\") to this fd once the "
                    "socket accepts connections");

  // `lpd stop`, the way out `lpd start` had lacked.
  std::string stop_socket;
  double stop_timeout_seconds = 30;
  auto* stop = app.add_subcommand(
      "stop",
      "Stop the running daemon gracefully (SIGTERM, as systemctl stop does) and wait until it is gone.\n"
      "Runs and helper servers it supervised keep running; the next `lpd start` takes them back.\n"
      "Only the daemon's user or root may stop it. Exit codes: 0 stopped, 1 refused or still running\n"
      "after --timeout, 2 no lpd was running on the socket, 64 bad command line.");
  stop->add_option("--socket", stop_socket,
                   "Socket of the daemon to stop (default: as `lpd start`: $LPD_SOCKET, else /run/lpd/lpd.sock "
                   "for root, else $XDG_RUNTIME_DIR/lpd/lpd.sock, else /tmp/lpd-$UID/lpd.sock)");
  stop->add_option("--timeout", stop_timeout_seconds, "Seconds to wait for it to be gone (default 30)")
      ->check(CLI::Range(0.01, 3600.0));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command gets lpctl's one line with a suggestion ("lpd stpo").
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (const auto unknown = lpd::client::unknown_command_message("lpd", {argv + 1, argv + argc}, names);
        unknown && e.get_exit_code() != 0) {
      std::cerr << *unknown << "\n";
      return 64;
    }
    // --help is 0; any other parse error is a bad command line: 64 (EX_USAGE,
    // as lpctl), not CLI11's own numbers.
    return app.exit(e) == 0 ? 0 : 64;
  }
  if (show_version) {
    std::cout << "lpd " << lpd::protocol::kLpdVersion << " (protocol " << lpd::protocol::kProtocolVersion << ")\n";
    return 0;
  }
  if (stop->parsed()) {
    if (stop_socket.empty()) stop_socket = lpd::protocol::default_socket_path(::geteuid(), lpd::protocol::process_env());
    if (stop_socket.front() != '/') {
      char cwd[4096];
      if (::getcwd(cwd, sizeof(cwd)) == nullptr) {
        std::cerr << "lpd: cannot resolve the relative socket path: getcwd failed\n";
        return lpd::daemon::kStopExitFailed;
      }
      stop_socket = std::string(cwd) + "/" + stop_socket;
    }
    return lpd::daemon::stop_daemon(stop_socket,
                                    std::chrono::milliseconds(static_cast<long long>(stop_timeout_seconds * 1000)));
  }
  if (!start->parsed()) {
    std::cout << app.help();
    return 64;
  }

  config.hello_timeout = std::chrono::milliseconds(static_cast<long long>(hello_timeout_seconds * 1000));
  if (!admin_group.empty()) {
    const group* g = ::getgrnam(admin_group.c_str());
    if (!g) {
      std::cerr << "lpd: --admin-group: no group named " << admin_group << "\n";
      return 64;
    }
    config.access.admin_gid = g->gr_gid;
  }
  if (config.socket_group.empty() && ::geteuid() == 0 && ::getgrnam("lpd") != nullptr) config.socket_group = "lpd";
  const auto env = lpd::protocol::process_env();
  if (config.socket_path.empty()) config.socket_path = lpd::protocol::default_socket_path(::geteuid(), env);
  if (config.state_dir.empty()) config.state_dir = lpd::protocol::default_state_dir(::geteuid(), env);
  if (config.socket_path.front() != '/' || config.state_dir.front() != '/') {
    // The daemon changes directory to /; relative paths would silently move.
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) == nullptr) {
      std::cerr << "lpd: cannot resolve relative paths: getcwd failed\n";
      return 1;
    }
    if (config.socket_path.front() != '/') config.socket_path = std::string(cwd) + "/" + config.socket_path;
    if (config.state_dir.front() != '/') config.state_dir = std::string(cwd) + "/" + config.state_dir;
  }

  // -- a bad --http is a bad command line, said before starting --
  if (!config.http_listen.empty()) {
    try {
      lpd::daemon::http::parse_listen_address(config.http_listen, config.http_allow_remote);
    } catch (const std::invalid_argument& e) {
      std::cerr << "lpd: " << e.what() << "\n";
      return 64;
    }
  } else if (config.http_allow_remote) {
    std::cerr << "lpd: --http-allow-remote needs --http ADDR:PORT\n";
    return 64;
  }
  if (!config.foreground) {
    if (ready_fd >= 0) {
      std::cerr << "lpd: --ready-fd needs --foreground\n";
      return 64;
    }
    return start_in_background(config);
  }
  Readiness readiness(ready_fd);
  if (ready_fd >= 0) ::fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
  return run_daemon(config, readiness);
}
