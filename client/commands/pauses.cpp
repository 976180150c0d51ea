// lpctl ls / watch / resume: live pauses.
#include <sys/stat.h>

#include <fstream>
#include <iostream>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/table_width.h"
#include "client/terminal_text.h"
#include "protocol/error.h"

namespace lpd::client {
namespace {

std::string describe(const json& pause) {
  const std::string kind = pause.value("kind", "failure");
  std::string what = pause.value("nodeid", "");
  if (kind == "checkpoint" && !pause.value("task", "").empty()) what += (what.empty() ? "" : " ") + std::string("task: ") + pause.value("task", "");
  return what;
}

void print_pause_table(const json& pauses) {
  const int run_width = column_width(pauses, "run_id", 24);
  std::printf("%-16s  %-*s  %-10s  %-9s  %-8s  %s\n", "PAUSE", run_width, "RUN", "KIND", "STATUS", "AGE", "TEST");
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& p : pauses) {
    std::printf("%-16s  %-*s  %-10s  %-9s  %-8s  %s\n", terminal_text(p.value("pause_id", "")).c_str(), run_width,
                terminal_text(p.value("run_id", "")).c_str(), terminal_text(p.value("kind", "")).c_str(),
                terminal_text(p.value("status", "")).c_str(), format_duration(now - p.value("created_at", now)).c_str(),
                terminal_text(describe(p)).c_str());
  }
}

void print_pause_details(const json& p) {
  // Every field but the numbers comes from a test or its user: shown, never
  // obeyed by the terminal (a failure's lines each on their own, indented).
  const auto text = [&p](const char* key) { return terminal_text(p.value(key, "")); };
  std::cout << "pause " << text("pause_id") << " (" << text("kind") << ") in run " << text("run_id") << "\n"
            << "  test:    " << text("nodeid") << "\n";
  if (!p.value("task", "").empty()) std::cout << "  task:    " << text("task") << "\n";
  if (const std::string failure = p.value("original_failure", ""); !failure.empty()) {
    std::string_view rest = failure;
    const char* label = "  failure: ";
    while (!rest.empty()) {
      const auto newline = rest.find('\n');
      std::cout << label << terminal_text(rest.substr(0, newline)) << "\n";
      label = "           ";
      if (newline == std::string_view::npos) break;
      rest.remove_prefix(newline + 1);
    }
  }
  std::cout << "  pid:     " << p.value("pid", 0) << (p.value("worker_id", "").empty() ? "" : " worker " + text("worker_id"))
            << "\n"
            << "  timeout: " << p.value("timeout", 0.0) << " s\n"
            << "  resume:  lpctl resume " << text("pause_id")
            << (p.value("kind", "") == "checkpoint" ? " --result true|false|none [--reason TEXT]"
                                                     : " [--failure-reason TEXT]")
            << "\n";
}

/// `resume` accepts a pause id, a unique prefix, or the path of a mirrored
/// pause file (runs/<run>/pauses/<id>.json), as pytest-live-pause users pass.
std::string pause_id_of(const std::string& arg) {
  struct stat st {};
  if (arg.find('/') == std::string::npos && arg.find(".json") == std::string::npos) return arg;
  if (::stat(arg.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return arg;
  std::ifstream in(arg);
  json file = json::parse(in, nullptr, false);
  if (file.is_discarded() || !file.contains("pause_id") || !file["pause_id"].is_string())
    throw protocol::Error(protocol::ErrorCode::kBadRequest, arg + " is not a pause file (no \"pause_id\")");
  return file["pause_id"].get<std::string>();
}

}  // namespace

Command ls_command() {
  struct Options {
    bool all = false;
    std::string run_id;
  };
  auto o = std::make_shared<Options>();
  return {"ls", "List pending pauses (-a: also resumed, timed out and stale)", [o](CLI::App& app) -> CommandRun {
            app.add_flag("-a,--all", o->all, "Include resumed, timed_out and stale pauses");
            app.add_option("--run-id", o->run_id, "Only pauses of this run");
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = {{"all", o->all}};
              if (!o->run_id.empty()) fields["run_id"] = o->run_id;
              // A page at a time: a host's whole history does not fit one reply.
              json pauses = json::array();
              while (true) {
                json page = connection.request("pause.list", fields);
                for (auto& p : page["pauses"]) pauses.push_back(std::move(p));
                const auto next = page.find("next");
                if (next == page.end() || !next->is_object()) break;  // the last page (or an lpd before paging)
                fields["after"] = *next;
              }
              if (global.json) {
                print_json(pauses);
              } else if (pauses.empty()) {
                std::cout << (o->all ? "no pauses\n" : "no pending pauses\n");
              } else {
                print_pause_table(pauses);
              }
              return kExitOk;
            };
          }};
}

Command watch_command() {
  struct Options {
    std::string run_id;
    double timeout = 0;
  };
  auto o = std::make_shared<Options>();
  return {"watch", "Wait for the next pending pause of a run and print it (exit 1 if the run ends first)",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("--run-id", o->run_id, "The run to watch")->required();
            app.add_option("--timeout", o->timeout, "Give up after this many seconds (exit 124)")
                ->check(CLI::PositiveNumber);
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = {{"run_id", o->run_id}};
              if (o->timeout > 0) fields["timeout"] = o->timeout;
              json pause;
              try {
                if (!global.json) std::cerr << "watching run " << o->run_id << " for pauses...\n";
                // The daemon answers the moment a pause appears: no polling here.
                pause = connection.request("pause.watch", fields, std::chrono::milliseconds(0))["pause"];
              } catch (const protocol::Error& e) {
                if (e.code() != protocol::ErrorCode::kTimeout) throw;
                std::cerr << "lpctl: watch: " << e.what() << "\n";
                return kExitTimedOut;  // named in lpctl --help
              }
              if (global.json)
                print_json(pause);
              else
                print_pause_details(pause);
              return kExitOk;
            };
          }};
}

Command resume_command() {
  struct Options {
    std::string target;
    std::string result;
    std::optional<std::string> reason;
    std::optional<std::string> failure_reason;
  };
  auto o = std::make_shared<Options>();
  return {"resume", "Resume a pending pause: a checkpoint with --result, a failure pause with --failure-reason",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("pause", o->target, "Pause id, unique prefix of one, or path to its pause .json")
                ->required();
            app.add_option("--result", o->result, "Checkpoint decision: true, false or none")
                ->check(CLI::IsMember({"true", "false", "none"}));
            app.add_option("--reason", o->reason, "Checkpoint: why (returned to the test)");
            app.add_option("--failure-reason", o->failure_reason,
                           "Failure pause: text appended to the test's failure report");
            return [o](const GlobalOptions& global) {
              json fields = {{"pause_id", pause_id_of(o->target)}};
              if (!o->result.empty()) fields["result"] = o->result == "none" ? json(nullptr) : json(o->result == "true");
              if (o->reason) fields["reason"] = *o->reason;
              if (o->failure_reason) fields["failure_reason"] = *o->failure_reason;
              auto connection = global.connect();
              json pause = connection.request("pause.resume", fields)["pause"];
              if (global.json)
                print_json(pause);
              else
                std::cout << "resumed " << pause.value("pause_id", "") << " (" << describe(pause) << ")\n";
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
