// lpctl run: run a command under lpd's supervision, streaming its output.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <cstring>
#include <iostream>
#include <optional>
#include <vector>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/text_arguments.h"
#include "client/crash_line.h"
#include "client/terminal_text.h"
#include "client/commands/report_patches.h"
#include "client/report_patch/report_file.h"
#include "protocol/error.h"
#include "protocol/signal_names.h"

extern char** environ;

namespace lpd::client {
namespace {

int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int signo) {
  const char byte = static_cast<char>(signo);
  (void)!::write(g_signal_pipe[1], &byte, 1);
}

std::string working_dir() {
  char cwd[4096];
  if (!::getcwd(cwd, sizeof(cwd))) throw std::runtime_error("cannot tell the current directory: getcwd failed");
  return cwd;
}

std::string absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return working_dir() + "/" + path;
}

/// Ends lpctl the way the run ended: with its code, or by its very signal,
/// so a caller's wait status shows a real signal death.
[[noreturn]] void exit_like(int returncode, const json& signal) {
  std::cout.flush();
  if (signal.is_number_integer()) {
    const int signo = signal.get<int>();
    // A shell then prints "Segmentation fault" for lpctl's line: say first
    // that it is the run's death passed on, not lpctl crashing.
    const auto name = protocol::known_signal_name(signo);
    std::cerr << "lpctl: ending by " << name.value_or("signal " + std::to_string(signo))
              << ", as the run did (lpctl itself did not crash)" << std::endl;
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::signal(signo, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(signo);
  }
  std::exit(returncode);
}

struct RunOptions {
  std::vector<std::string> command;
  std::string name;
  std::string cwd;
  std::vector<std::string> env;
  int retry_crashed = 0;
  int rerun_crashed = 0;
  bool fail_on_flaky = false;
  std::string runner;
  std::string junit;
  std::string crash_log;
  bool pause_on_failure = false;
  bool detach = false;
  double grace = 10;
};

void print_crashes(const json& crashes, std::size_t omitted, const std::string& run_id) {
  for (const auto& c : crashes) {
    // the nodeid once (the reason names it too), its phase beside it.
    const std::string nodeid = c.value("nodeid", "");
    const std::string phase = c.contains("phase") && c["phase"].is_string() ? c["phase"].get<std::string>() : "";
    std::cerr << "lpctl: " << (c.value("flaky", false) ? "flaky crash (passed when re-run): " : "crash: ")
              << terminal_text((nodeid.empty() ? "(" + c.value("where", "") + ")" : nodeid) +
                               (phase.empty() ? "" : " [" + phase + "]") + ": " +
                               reason_beside_test(c.value("reason", ""), nodeid, phase))
              << "\n";
  }
  if (omitted > 0)
    std::cerr << "lpctl: " << omitted << " more crash(es), not listed here: lpctl crashes --run-id " << run_id
              << "\n";
}

/// "the largest are env HOME (12 bytes), argv[1] (3 bytes)": the three
/// largest environment variables and arguments of a run.start's `fields`,
/// as JSON text, for a request too large to send.
std::string largest_fields(const json& fields) {
  std::vector<std::pair<std::size_t, std::string>> sizes;
  if (const auto env = fields.find("env"); env != fields.end() && env->is_object())
    for (const auto& [name, value] : env->items()) sizes.emplace_back(value.dump().size() + name.size(), "env " + name);
  if (const auto argv = fields.find("argv"); argv != fields.end() && argv->is_array())
    for (std::size_t i = 0; i < argv->size(); ++i) sizes.emplace_back((*argv)[i].dump().size(), "argv[" + std::to_string(i) + "]");
  std::sort(sizes.begin(), sizes.end(), std::greater<>());
  std::string out = "the largest are";
  for (std::size_t i = 0; i < sizes.size() && i < 3; ++i)
    out += (i ? ", " : " ") + terminal_text(sizes[i].second) + " (" + std::to_string(sizes[i].first) + " bytes)";
  return out;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// Throws unless a report can be written at `path`: its directory takes new
/// files from us and what is there, if anything, is a regular file (a link
/// to one is fine: the rename replaces the link, never writes through it).
void check_report_path(const std::string& path) {
  const std::string dir = parent_of(path);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno) + " (directory " + dir + ")");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw std::runtime_error("cannot write " + path + ": not a regular file");
}

/// The JUnit XML of run `run_id`, whole: fetched in pieces (run.report
/// with offset and next), as a report of many thousand tests is larger than
/// one reply. Throws std::runtime_error when lpd sends them out of order.
std::string fetch_report(const GlobalOptions& global, const std::string& run_id) {
  auto connection = global.connect();
  // A running run's report is rendered anew at offset 0 (its "snapshot"
  // number changes): pieces of two renderings would not make one document,
  // so a change mid-way starts over, a few times.
  constexpr int kTries = 5;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    std::string xml;
    json snapshot;
    bool changed = false;
    for (json next = 0; !next.is_null();) {
      json piece = connection.request("run.report", {{"run_id", run_id}, {"offset", next}});
      const json this_snapshot = piece.contains("snapshot") ? piece["snapshot"] : json(0);
      if (next == 0) snapshot = this_snapshot;
      if (this_snapshot != snapshot) {
        changed = true;
        break;
      }
      xml += piece.value("junit", "");
      next = piece.contains("next") ? piece["next"] : json(nullptr);
      if (!next.is_null() && (!next.is_number_unsigned() || next.get<std::size_t>() != xml.size()))
        throw std::runtime_error("lpd sent the report of run " + run_id + " out of order");
    }
    if (!changed) return xml;
  }
  throw std::runtime_error("the report of run " + run_id + " changed " + std::to_string(kTries) +
                           " times while it was read (other readers of a running run); try again");
}

void write_report(const GlobalOptions& global, const std::string& run_id, const std::string& path) {
  const std::string xml = fetch_report(global, run_id);
  check_report_path(path);
  // The temp file is created, never opened: a link or FIFO planted at its
  // name (in /tmp, by anyone) makes the write fail instead of landing there.
  const std::string temp = path + ".lpctl-new";
  ::unlink(temp.c_str());  // a leftover of an interrupted write
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + temp + ": " + std::strerror(errno));
  int err = report_patch::write_all(fd, xml);
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && std::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(err));
  }
}

/// the run's pause events, as lpd announces them (the
/// events' `announcement`: the same lines a pytest controller prints), each
/// on lines of its own in the output stream.
class PauseLines {
 public:
  /// Subscribes `connection` to the run's pause events: on the first
  /// connection those lpd still holds (the run may have paused before lpctl
  /// got here), after a reconnect exactly those after the last one seen.
  void subscribe(Connection& connection, const std::string& run_id) {
    json fields = {{"run_id", run_id}, {"types", json::array({"pause."})}};
    if (last_seq_)
      fields["since"] = *last_seq_;
    else
      fields["replay"] = true;
    json result;
    try {
      result = connection.request("events.subscribe", fields);
    } catch (const protocol::Error& e) {
      // lpd refused the subscription: the run's output still streams, and
      // a pause still shows in `lpctl ls`; say once why its lines are missing.
      if (!refused_) std::cerr << "lpctl: pause lines will not be shown: " << e.what() << "\n";
      refused_ = true;
      return;
    }
    if (!last_seq_ && result.contains("last_seq") && result["last_seq"].is_number_unsigned())
      last_seq_ = result["last_seq"].get<std::uint64_t>();  // replayed ones come next, at or below it
  }

  /// Prints a pause event's lines; false for any other push.
  /// `ended_with_newline` says whether the output so far left a line open.
  bool print(const std::string& event, const json& data, bool& ended_with_newline) {
    if (event.rfind("pause.", 0) != 0 || !data.is_object()) return false;
    if (auto seq = data.find("seq"); seq != data.end() && seq->is_number_unsigned())
      if (!last_seq_ || seq->get<std::uint64_t>() > *last_seq_) last_seq_ = seq->get<std::uint64_t>();
    auto text = data.find("announcement");
    if (text == data.end() || !text->is_string() || text->get_ref<const std::string&>().empty()) return true;
    if (!ended_with_newline) std::cout << "\n";
    std::cout << text->get_ref<const std::string&>() << std::endl;
    ended_with_newline = true;
    return true;
  }

 private:
  std::optional<std::uint64_t> last_seq_;
  bool refused_ = false;
};

/// Whether descriptors `a` and `b` are the same open file or pipe (a shell's
/// `2>&1`, or one terminal): what the command writes to both is then read
/// as one stream, in the order written.
bool same_file(int a, int b) {
  struct stat sa {}, sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/// SIGINT and SIGTERM write their number to g_signal_pipe, which follow()
/// watches beside lpd's socket.
/// SIGHUP too (the terminal went away). SIGPIPE is ignored: follow() sees
/// a stdout that closed (`lpctl run -- yes | head -1`) as a failed write and
/// treats it as that signal, as the command itself would have got it.
void catch_stop_signals() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

/// What Ctrl-C (SIGINT, or SIGTERM) does while follow() streams a run.
enum class OnStopSignal {
  kStopRun,  // lpctl run: stop the run (run.stop after `grace`; again: at once)
  kDetach,   // lpctl attach: say so, then end by the signal; the run goes on
};

/// Streams output until run.done. A lost daemon is waited for and the
/// stream resumes from the last byte seen, so lpd can restart mid-run.
json follow(const GlobalOptions& global, const std::string& run_id, double grace, OnStopSignal on_stop) {
  std::uint64_t offset = 0;
  bool ended_with_newline = true;
  // A run that keeps stderr apart (started where lpctl's stdout was no
  // terminal) sends it as its own stream: it goes to lpctl's stderr.
  std::uint64_t stderr_offset = 0;
  bool stderr_ended_with_newline = true;
  // lpctl's own closing lines go to its stderr (and with --json, run.done
  // to its stdout): a newline ends the command's unfinished last line first
  // only where one of them would share that line (--json, a terminal,
  // 2>&1); a file or pipe of stdout alone gets its bytes as written.
  const bool stdout_meets_stderr =
      global.json || ::isatty(STDOUT_FILENO) || same_file(STDOUT_FILENO, STDERR_FILENO);
  bool stdout_lost = false;  // a write to stdout failed (its reader left)
  int stops = 0;
  DaemonOutage outage;
  PauseLines pause_lines;
  for (;;) {
    std::optional<Connection> connection;
    try {
      connection.emplace(global.connect());
      pause_lines.subscribe(*connection, run_id);
      connection->request("run.attach", {{"run_id", run_id}, {"offset", offset}, {"stderr_offset", stderr_offset}});
      outage.over("following run " + run_id + " again");
      for (;;) {
        while (auto push = connection->next_push(std::chrono::milliseconds(0))) {
          const std::string event = push->value("event", "");
          const json& data = (*push)["data"];
          if (pause_lines.print(event, data, ended_with_newline)) {
            continue;
          } else if (event == "run.output" && data.value("stream", "stdout") == "stderr") {
            const std::string text = data.value("data", "");
            std::cerr.write(text.data(), static_cast<std::streamsize>(text.size()));
            std::cerr.flush();
            if (!text.empty()) stderr_ended_with_newline = text.back() == '\n';
            stderr_offset = data.value("offset", stderr_offset);
          } else if (event == "run.output") {
            const std::string text = data.value("data", "");
            std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
            std::cout.flush();
            if (!std::cout && !stdout_lost) {
              // Nobody reads the output any more: as if the command had got SIGPIPE.
              stdout_lost = true;
              on_stop_signal(SIGPIPE);
            }
            if (!text.empty()) ended_with_newline = text.back() == '\n';
            offset = data.value("offset", offset);
          } else if (event == "run.done") {
            // A crashed command may stop mid-line; what we print next starts on its own.
            if (offset > 0 && !ended_with_newline && stdout_meets_stderr) std::cout << std::endl;
            if (stderr_offset > 0 && !stderr_ended_with_newline) std::cerr << std::endl;
            return data;
          }
        }
        pollfd fds[2] = {{connection->fd(), POLLIN, 0}, {g_signal_pipe[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents & POLLIN) {
          char signo = 0;
          (void)!::read(g_signal_pipe[0], &signo, 1);
          if (on_stop == OnStopSignal::kDetach) {
            std::cout.flush();
            std::cerr << "\nlpctl: detached from run " << run_id << "; it goes on (lpctl stop " << run_id
                      << " stops it, lpctl attach " << run_id << " follows it again)" << std::endl;
            std::signal(signo, SIG_DFL);
            ::raise(signo);
          }
          ++stops;
          std::cerr << "\nlpctl: stopping run " << run_id
                    << (signo == SIGPIPE ? " (its output has no reader any more)"
                        : signo == SIGHUP ? " (the terminal hung up)"
                        : stops == 1     ? " (again to kill it at once)"
                                         : ", killing it")
                    << "\n";
          auto stopper = global.connect();
          try {
            stopper.request("run.stop", {{"run_id", run_id}, {"grace", stops == 1 ? grace : 0.0}});
          } catch (const protocol::Error& e) {
            if (e.code() != protocol::ErrorCode::kConflict) throw;  // already done
          }
        }
      }
    } catch (const DaemonUnreachable& e) {
      outage.wait(e);
    }
  }
}

/// The end of `lpctl run` and `lpctl attach`: the run's crashes, its
/// verdict and the reports that could not be written, on stderr; run.done
/// itself with --json; then lpctl ends as the run did (exit_like), with 1
/// for a green run whose report is missing.
[[noreturn]] void end_like_the_run(const GlobalOptions& global, const std::string& run_id, const json& done,
                                   std::vector<std::string> report_errors) {
  const auto omitted = done.find("crashes_omitted");
  print_crashes(done.value("crashes", json::array()),
                omitted != done.end() && omitted->is_number_unsigned() ? omitted->get<std::size_t>() : 0, run_id);
  // A command without a shim says nothing about its tests: say so,
  // rather than let an empty report pass for a clean one.
  if (done.contains("tests_reported") && !done.value("tests_reported", true)) {
    if (!done.value("shim_joined", false))
      std::cerr << "lpctl: no test events arrived from the command (no lpd shim in it?); its report is "
                   "one testcase carrying its exit status\n";
    else
      std::cerr << "lpctl: the command's lpd shim saw no test run before the command ended\n";
  }
  std::cerr << "lpctl: run " << run_id << " " << done.value("text", "") << "\n";
  for (const auto& e : report_errors) std::cerr << "lpctl: error: " << e << "\n";
  if (global.json) print_json(done);
  int returncode = done.value("returncode", 1);
  if (!report_errors.empty() && returncode == 0) returncode = 1;
  exit_like(returncode, done.value("signal", json()));
}

// -- pytest-abort's environment ------------------------------------
/// The crash log lpd appends to: --crash-log, else pytest-abort's
/// PYTEST_ABORT_CRASHED_TESTS_LOG from lpctl's environment (so its users'
/// runners get the lines where they asked), else none.
std::string crash_log_path(const std::string& option) {
  std::string path = option;
  if (path.empty()) {
    const char* from_env = std::getenv("PYTEST_ABORT_CRASHED_TESTS_LOG");
    if (!from_env) return {};
    path = from_env;
  }
  // pytest-abort makes the log's directory (logs/crashed.jsonl in a fresh
  // checkout): so does lpctl, as the user it runs as. lpd then refuses
  // only what it cannot write for good reasons (a link, another's file).
  std::error_code ignored;
  const auto parent = std::filesystem::absolute(path, ignored).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  return path;
}

}  // namespace

Command run_command() {
  auto o = std::make_shared<RunOptions>();
  return {"run", "Run a test command under supervision: live output, crash attribution, retries, JUnit",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("--name", o->name,
                           "A name for the run, the prefix of its run id: at most 41 characters, a letter or digit "
                           "first, then letters, digits, '.', '_', '-'");
            app.add_option("--cwd", o->cwd, "Working directory (default: the current one)");
            repeatable(app.add_option("--env", o->env, "Extra environment variable K=V (repeatable)"));
            app.add_option("--retry-crashed", o->retry_crashed,
                           "Re-run the command up to N times without the tests that crashed (needs a runner: "
                           "pytest, gtest, catch2, native)")
                ->check(CLI::Range(0, 100));
            app.add_option("--rerun-crashed", o->rerun_crashed,
                           "Re-run each crashed test alone, in a new process, up to N times; one that passes is a "
                           "flaky crash and does not fail the run")
                ->check(CLI::Range(0, 100));
            app.add_flag("--fail-on-flaky", o->fail_on_flaky, "Flaky crashes (passed when re-run) fail the run too");
            app.add_option("--runner", o->runner,
                           "How to leave tests out of the command or run one alone: pytest, gtest, catch2 or "
                           "native (default: recognised from the command line; Catch2 and native must be named)")
                ->check(CLI::IsMember({"pytest", "gtest", "catch2", "native"}));
            app.add_option("--junit", o->junit,
                           "Write a JUnit XML report here (crashed tests included; a file: stdout carries the "
                           "command's output, use lpctl report RUN --junit - for the XML on stdout)");
            app.add_option("--crash-log", o->crash_log, "Also append each crash record (JSON line) to this file (default: $PYTEST_ABORT_CRASHED_TESTS_LOG when set, as pytest-abort)");
            app.add_flag("--pause-on-failure", o->pause_on_failure,
                         "Pause failed tests before teardown (LPD_PAUSE_ON_FAILURE=1 for the shims; argv is left alone)");
            app.add_flag("--detach", o->detach, "Print the run id and return at once");
            app.add_option("--grace", o->grace, "Seconds between SIGINT and SIGKILL on Ctrl-C (default 10)")
                ->check(CLI::NonNegativeNumber);
            app.add_option("command", o->command, "The command, after --")->required();
            app.footer(
                "Output: when lpctl's stdout is a terminal, the command runs on a pseudo-terminal of the same size "
                "(colours, line buffering; its stdout and stderr merged, as a terminal shows them). Otherwise its "
                "stdout goes to lpctl's stdout and its stderr to lpctl's stderr (lpctl attach does the same later). "
                "Its stdin is /dev/null.");
            return [o](const GlobalOptions& global) {
              json env = json::object();
              for (char** e = environ; *e; ++e) {
                const std::string kv = *e;
                const auto eq = kv.find('=');
                if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
              }
              if (o->junit == "-")
                throw UsageError("--junit -: stdout carries the command's output; give a file, or write the XML to "
                                 "stdout afterwards with lpctl report RUN_ID --junit -");
              for (const auto& kv : o->env) {
                const auto eq = kv.find('=');
                if (eq == std::string::npos || eq == 0)
                  throw UsageError("--env takes K=V, got \"" + kv + "\"");  // a command-line error: exit 64
                env[kv.substr(0, eq)] = kv.substr(eq + 1);
              }
              json fields = {{"argv", o->command},
                             {"cwd", o->cwd.empty() ? working_dir() : absolute(o->cwd)},
                             {"env", env},
                             {"retry_crashed", o->retry_crashed},
                             {"rerun_crashed", o->rerun_crashed},
                             {"fail_on_flaky", o->fail_on_flaky},
                             {"pause_on_failure", o->pause_on_failure}};
              if (!o->name.empty()) fields["name"] = o->name;
              // lpctl's stdout is a terminal: the command
              // gets one of the same size (colours, line buffering), as if
              // run there. Not for --detach: nobody is watching.
              if (!o->detach && ::isatty(STDOUT_FILENO)) {
                winsize size{};
                if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0 || size.ws_row == 0)
                  size = winsize{24, 80, 0, 0};
                fields["terminal"] = {{"columns", size.ws_col}, {"rows", size.ws_row}};
              } else if (!same_file(STDOUT_FILENO, STDERR_FILENO)) {
                // No terminal to merge them: the command's stderr stays stderr
                // (lpctl's, and a later lpctl attach's). Not under `2>&1`
                // (`lpctl run -- make check 2>&1 | tee log`): one log keeps
                // the order the lines were written in, which two would lose.
                fields["separate_stderr"] = true;
              }
              if (!o->runner.empty()) fields["runner"] = o->runner;
              if (const auto log = crash_log_path(o->crash_log); !log.empty()) fields["crash_log"] = absolute(log);
              // Detached runs have nobody to write the report: lpd does, at the end.
              if (o->detach && !o->junit.empty()) fields["junit"] = absolute(o->junit);

              // Refused now, not after a long run (the report is ours to write).
              if (!o->detach && !o->junit.empty()) check_report_path(absolute(o->junit));
              require_utf8_fields(fields);  // what lpd runs is what was typed, or nothing

              json started;
              {
                auto connection = global.connect();
                try {
                  started = connection.request("run.start", fields);
                } catch (const protocol::Error& e) {
                  if (e.code() != protocol::ErrorCode::kTooLarge) throw;
                  // Most often the environment: lpd runs the command with it.
                  throw protocol::Error(protocol::ErrorCode::kTooLarge,
                                        std::string(e.what()) + "; the command's arguments and environment go in it, " +
                                            largest_fields(fields) + ": pass fewer or smaller ones");
                }
              }
              const std::string run_id = started.value("run_id", "");
              if (o->detach) {
                if (global.json)
                  print_json(started);
                else
                  std::cout << run_id << "\n";
                return kExitOk;
              }
              catch_stop_signals();
              std::cerr << "lpctl: run " << run_id << " (log " << started.value("log", "");
              if (started.contains("stderr_log")) std::cerr << ", stderr " << started.value("stderr_log", "");
              std::cerr << ")\n";
              const json done = follow(global, run_id, o->grace, OnStopSignal::kStopRun);
              // Files that could not be written (lpd's --crash-log, our
              // --junit) are said last and make the exit non-zero: a green
              // exit with a missing report would be a lie.
              std::vector<std::string> report_errors;
              for (const auto& e : done.value("report_errors", json::array()))
                if (e.is_string()) report_errors.push_back(e.get<std::string>());
              if (!o->junit.empty()) {
                try {
                  write_report(global, run_id, absolute(o->junit));
                } catch (const std::exception& e) {
                  report_errors.push_back(std::string("JUnit report: ") + e.what());
                }
              }
              end_like_the_run(global, run_id, done, std::move(report_errors));  // shared with attach
            };
          }};
}

// -- lpctl attach ------------------------------------------
Command attach_command() {
  auto run_id = std::make_shared<std::string>();
  return {"attach",
          "Replay a supervised run's output from its start and follow it to the end (a run started with --detach, "
          "or one already over); exit with the run's code. Ctrl-C only detaches: the run goes on (lpctl stop RUN stops it)",
          [run_id](CLI::App& app) -> CommandRun {
            app.add_option("run", *run_id, "Run id (lpctl runs -a lists them)")->required();
            return [run_id](const GlobalOptions& global) -> int {
              // Ctrl-C leaves the run alone and only ends lpctl, saying so;
              // lpctl stop RUN stops it.
              catch_stop_signals();
              const json done = follow(global, *run_id, 0, OnStopSignal::kDetach);
              std::vector<std::string> report_errors;
              for (const auto& e : done.value("report_errors", json::array()))
                if (e.is_string()) report_errors.push_back(e.get<std::string>());
              end_like_the_run(global, *run_id, done, std::move(report_errors));
            };
          }};
}

Command stop_command() {
  struct Options {
    std::string run_id;
    double grace = 10;
  };
  auto o = std::make_shared<Options>();
  return {"stop",
          "Stop a supervised run: SIGINT to its process group, SIGKILL after --grace. Returns once the signal "
          "is sent, not when the run has ended: `lpctl attach RUN` waits for its end and exits with its code",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("run", o->run_id, "Run id")->required();
            app.add_option("--grace", o->grace, "Seconds before SIGKILL (default 10)")->check(CLI::NonNegativeNumber);
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              json result = connection.request("run.stop", {{"run_id", o->run_id}, {"grace", o->grace}});
              if (global.json)
                print_json(result);
              else
                std::cout << "stopping " << o->run_id << " (lpctl attach " << o->run_id << " waits for its end)\n";
              return kExitOk;
            };
          }};
}

Command report_command() {
  struct Options {
    std::string run_id;
    std::string junit;
    ReportPatchOptions patches;
  };
  auto o = std::make_shared<Options>();
  return {"report",
          "Write a run's JUnit XML report (merged across workers and retries, crashes included), or patch its crashed "
          "tests into pytest-json-report, pytest-html and pytest-csv reports",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("run", o->run_id, "Run id (not needed with --crash-log)");
            app.add_option("--junit", o->junit, "Where to write the JUnit XML (- for stdout)");
            add_report_patch_options(app, o->patches);
            return [o](const GlobalOptions& global) {
              // a run id, unless the crashes come from a crash log; something to write.
              if (o->junit.empty() && !o->patches.any())
                throw UsageError("give --junit, --json-report, --html-report or --csv-report");
              if (o->run_id.empty() && (!o->junit.empty() || o->patches.crash_log.empty()))
                throw UsageError("a run id is needed (without one, --crash-log must name the crashes)");
              if (o->junit == "-") {
                // The XML alone on stdout, for a pipe: nothing else may go there.
                if (o->patches.any())
                  throw UsageError("--junit - writes the XML alone to stdout: patch the other reports in another call");
                std::cout << fetch_report(global, o->run_id) << std::flush;
                return std::cout ? kExitOk : kExitFailed;
              }
              if (!o->junit.empty()) {
                write_report(global, o->run_id, absolute(o->junit));
                if (!global.json) std::cout << "wrote " << o->junit << "\n";
              }
              return o->patches.any() ? patch_reports(global, o->run_id, o->patches) : kExitOk;
            };
          }};
}

}  // namespace lpd::client
