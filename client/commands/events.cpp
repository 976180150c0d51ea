// lpctl events / crashes: what happened, as a stream or a list.
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <string_view>

#include "client/cli.h"
#include "client/commands/commands.h"
#include "client/paged_listing.h"
#include "client/terminal_text.h"
#include "client/crash_line.h"

namespace lpd::client {
namespace {

std::string clock_time(double t) {
  const std::time_t secs = static_cast<std::time_t>(t);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>((t - static_cast<double>(secs)) * 1000));
  return buf;
}

/// One human line per event: time, type, run, and the few fields that matter.
void print_event(const std::string& type, const json& data) {
  std::string detail;
  if (type == "job") {
    const json payload = data.value("payload", json::object());
    detail = payload.value("state", "");
    if (payload.contains("returncode") && !payload["returncode"].is_null())
      detail += " returncode=" + std::to_string(payload["returncode"].get<int>());
    if (!payload.value("text", "").empty()) detail += " (" + payload.value("text", "") + ")";
  } else if (type == "crash") {
    detail = data.value("nodeid", "") + " " + data.value("reason", "");
  } else if (type.rfind("test.", 0) == 0) {
    detail = data.value("nodeid", "") + (data.contains("outcome") ? " " + data.value("outcome", "") : "");
    if (!data.value("worker_id", "").empty()) detail += " [" + data.value("worker_id", "") + "]";
  } else if (type.rfind("pause.", 0) == 0) {
    detail = data.value("pause_id", "") + " " + data.value("nodeid", "") + " " + data.value("status", "");
  } else if (type.rfind("process.", 0) == 0) {
    detail = data.value("name", "") + " pid " + std::to_string(data.value("pid", 0));
  }
  // Nodeids, reasons and texts are chosen by tests and other users: shown, never obeyed.
  std::printf("%s  %-16s %-28s %s\n", clock_time(data.value("time", 0.0)).c_str(), terminal_text(type).c_str(),
              terminal_text(data.value("run_id", "")).c_str(), terminal_text(detail).c_str());
  std::fflush(stdout);
}

void print(const GlobalOptions& global, const std::string& type, const json& data) {
  if (global.json)
    print_json({{"event", type}, {"data", data}});
  else
    print_event(type, data);
}

}  // namespace

Command events_command() {
  struct Options {
    std::string run_id;
    bool follow = false;
    std::vector<std::string> types;
    std::optional<std::uint64_t> since;
  };
  auto o = std::make_shared<Options>();
  return {"events", "Show job, test, pause, process and crash events in order (--follow: keep streaming, "
                    "across lpd restarts)",
          [o](CLI::App& app) -> CommandRun {
            app.add_option("--run-id", o->run_id, "Only events of this run");
            app.add_flag("-f,--follow", o->follow,
                         "Keep streaming as events happen (with --run-id: until the run ends); if lpd restarts, "
                         "wait for it and go on after the last event shown, nothing missed or repeated");
            repeatable(app.add_option("--type", o->types, "Only events whose type starts with this (repeatable)"));
            // CLI11 wraps "-1" into a huge unsigned, which reached lpd as -1
            // and came back bad_request (exit 1): a usage error (64) here.
            app.add_option("--since", o->since,
                           "Only events after this seq (seqs keep increasing across lpd restarts); every kept "
                           "event after it, then live with --follow")
                ->check(CLI::Validator(
                    [](const std::string& text) {
                      return text.starts_with('-') ? "a seq is 0 or more, not " + text : std::string();
                    },
                    "SEQ"));
            return [o](const GlobalOptions& global) {
              auto connection = global.connect();
              json filter = json::object();
              if (!o->run_id.empty()) filter["run_id"] = o->run_id;
              if (!o->types.empty()) filter["types"] = o->types;
              if (!o->follow) {
                // events.list answers a page at a time, each well under the
                // protocol's line limit; each page is printed as it arrives.
                if (o->since) filter["since"] = *o->since;
                for (;;) {
                  const json page = connection.request("events.list", filter);
                  for (const auto& e : page.value("events", json::array())) print(global, e.value("event", ""), e["data"]);
                  const auto next = page.find("next");
                  // An lpd from before paging sends no cursor: its one reply was everything.
                  if (next == page.end() || !next->is_number_unsigned()) return kExitOk;
                  filter["since"] = *next;
                }
              }
              // lpd sends the kept history, then live events, in one stream:
              // nothing lost or repeated in between.
              if (o->since)
                filter["since"] = *o->since;
              else
                filter["replay"] = true;  // what lpd holds in memory first, then live
              std::optional<Connection> live(std::move(connection));
              DaemonOutage outage;
              for (;;) {
                try {
                  if (!live) live.emplace(global.connect());
                  live->request("events.subscribe", filter);
                  outage.over("following events again");
                  for (;;) {
                    auto push = live->next_push(std::nullopt);
                    if (!push) continue;
                    const std::string type = push->value("event", "");
                    const json& data = (*push)["data"];
                    print(global, type, data);
                    if (!o->run_id.empty() && type == "run.ended") return kExitOk;
                    // Where to take up after a restart: seqs keep growing
                    // across restarts, and the journal has what came meanwhile.
                    if (const auto seq = data.find("seq"); seq != data.end() && seq->is_number_unsigned()) {
                      filter.erase("replay");
                      filter["since"] = seq->get<std::uint64_t>();
                    }
                  }
                } catch (const DaemonUnreachable& e) {
                  // lpd restarted (or was stopped): wait for it as `lpctl
                  // run` does, then carry on from the last event printed.
                  live.reset();
                  outage.wait(e);
                }
              }
            };
          }};
}

namespace {

/// One crash record as a line of `lpctl crashes`; with `traceback` (-v)
/// the traceback it left under it.
void print_crash(const json& c, bool traceback, int run_width) {
  const std::string nodeid = c.value("nodeid", "");
  const std::string phase = c.contains("phase") && c["phase"].is_string() ? c["phase"].get<std::string>() : "";
  std::string test = nodeid.empty() ? "(" + c.value("where", "") + ")" : nodeid;
  if (!phase.empty()) test += " [" + phase + "]";
  if (c.value("flaky", false)) test += " (flaky: passed when re-run)";
  // the nodeid once (the reason names it too).
  const std::string reason = reason_beside_test(c.value("reason", ""), nodeid, phase);
  const auto signal_name = c.find("signal_name");
  // A record redacted for this reader has no reason: no dangling ": ".
  std::printf("%-12s  %-*s  %-8s  %s%s%s\n", clock_time(c.value("crash_time", 0.0)).c_str(), run_width,
              terminal_text(c.value("run_id", "")).c_str(),
              signal_name != c.end() && signal_name->is_string()
                  ? terminal_text(signal_name->get_ref<const std::string&>()).c_str()
                  : "-",
              terminal_text(test).c_str(), reason.empty() ? "" : ": ", terminal_text(reason).c_str());
  if (!traceback) return;
  // The traceback the crash left (faulthandler's), indented under its line;
  // withheld from those who may not read it (redacted records have none).
  const auto tb = c.find("traceback");
  if (tb == c.end() || !tb->is_string()) return;
  std::string_view text = tb->get_ref<const std::string&>();
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    const std::string shown = terminal_text(line);
    std::printf("    %s\n", shown.c_str());
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
}

}  // namespace

Command crashes_command() {
  struct Options {
    std::string run_id;
    bool verbose = false;  // tracebacks
  };
  auto o = std::make_shared<Options>();
  auto run_id = std::shared_ptr<std::string>(o, &o->run_id);
  return {"crashes", "List crash records, oldest first: the test that was running, the signal, the reason",
          [o, run_id](CLI::App& app) -> CommandRun {
            app.add_option("--run-id", *run_id, "Only crashes of this run");
            app.add_flag("-v,--verbose", o->verbose, "Also print the traceback each crash left (faulthandler's)");
            return [o, run_id](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = json::object();
              if (!run_id->empty()) fields["run_id"] = *run_id;
              PagedListing listing;
              listing.op = "crash.list";
              listing.items = "crashes";
              listing.run_width_at_least = 28;
              listing.is_cursor = [](const json& next) { return next.is_number_unsigned(); };
              listing.print_header = [](int run_width) {
                std::printf("%-12s  %-*s  %-8s  %s\n", "TIME", run_width, "RUN", "SIGNAL", "TEST / REASON");
              };
              listing.print_row = [verbose = o->verbose](const json& c, int run_width) {
                print_crash(c, verbose, run_width);
              };
              listing.none = "no crashes";
              return print_paged_listing(connection, fields, listing, global.json);
            };
          }};
}

}  // namespace lpd::client
