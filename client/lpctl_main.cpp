// lpctl: the command-line client of lpd.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/cli_hints.h"
#include "client/unreachable_text.h"
#include "client/usage_error.h"
#include "protocol/error.h"
#include "protocol/paths.h"
#include "protocol/version.h"

namespace {

/// The names of `app`'s subcommands, in help order.
std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

/// after CLI11's own refusal of a known command, the
/// `--` that keeps a command's options (pytest -q) from being read as
/// lpctl's (cli_hints.h has the rules).
void print_dashdash_hint(const std::vector<std::string>& args) {
  const auto at = lpd::client::command_word_index(args);
  if (!at) return;
  const std::string& word = args[*at];
  if (word != "run" && word != "ensure") return;
  if (const auto hint = lpd::client::dashdash_hint(word, {args.begin() + static_cast<long>(*at) + 1, args.end()}))
    std::cerr << "lpctl: hint: " << *hint << "\n";
}

}  // namespace

namespace {

/// the group of the socket lpctl may not connect to, as
/// group_label() names it from /etc/group (read up to 1 MiB); nullopt when
/// the socket cannot be stat'ed (its directory keeps this user out too).
std::optional<std::string> socket_group_of(const lpd::client::DaemonUnreachable& e) {
  struct stat st {};
  if (!e.denied() || ::stat(e.socket_path().c_str(), &st) != 0) return std::nullopt;
  std::ifstream in("/etc/group");
  std::string text(1024 * 1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return lpd::client::group_label(st.st_gid, text);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lpd::client;
  CLI::App app{"lpctl: control lpd, the test-process supervisor.\n"
               "Exit codes: 0 ok, 1 the operation failed, 2 no lpd answered, 64 bad command line, 124 a wait "
               "timed out (watch --timeout); run and attach exit with the run's own code."};
  app.require_subcommand(0, 1);
  app.fallthrough();
  GlobalOptions global;
  bool show_version = false;
  app.add_flag("--version", show_version, "Print lpctl's version");
  app.add_option("--socket", global.socket,
                 "Daemon socket (default: $LPD_SOCKET, else /run/lpd/lpd.sock for root, "
                 "else $XDG_RUNTIME_DIR/lpd/lpd.sock, else /tmp/lpd-$UID/lpd.sock)");
  app.add_flag("--json", global.json, "Machine-readable output: one JSON document per line");
  app.add_option("--timeout", global.timeout_seconds, "Seconds to wait for the daemon's answer (default 10)")
      ->check(CLI::PositiveNumber);

  std::map<CLI::App*, CommandRun> runs;
  for (auto& command : command_table()) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    runs[sub] = command.configure(*sub);
  }

  // A command given without `--` whose options CLI11 would take as lpctl's
  // own (`lpctl run pytest tests/ --timeout 30` made pytest's timeout
  // lpctl's): refused with the hint before anything runs.
  {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (const auto at = command_word_index(args); at && args[*at] == "run") {
      std::vector<std::string> value_options;
      for (const CLI::Option* opt : app.get_subcommand("run")->get_options()) {
        if (opt->get_items_expected_max() == 0) continue;  // a flag
        for (const auto& name : opt->get_lnames()) value_options.push_back("--" + name);
        for (const auto& name : opt->get_snames()) value_options.push_back("-" + name);
      }
      if (const auto hint = dashdash_hint("run", {args.begin() + static_cast<long>(*at) + 1, args.end()}, value_options)) {
        std::cerr << "lpctl: " << *hint << "\n";
        return kExitUsage;
      }
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    // A mistyped command: one line with the suggestion, not CLI11's
    // "argument not expected" before it.
    if (const auto unknown = unknown_command_message("lpctl", args, command_names(app)); unknown && e.get_exit_code() != 0) {
      std::cerr << *unknown << "\n";
      return kExitUsage;
    }
    const int code = app.exit(e);
    if (code != 0) print_dashdash_hint(args);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (global.json) {
    // --json output is read by programs, often through a pipe, where stdio
    // would otherwise buffer 4 KiB: every line goes out as it is written
    // (print_json flushes too; this also covers a command that writes its
    // JSON piece by piece). Set before anything is printed, as setvbuf asks.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
  }
  if (show_version) {
    std::cout << "lpctl " << lpd::protocol::kLpdVersion << " (protocol " << lpd::protocol::kProtocolVersion << ")\n";
    return kExitOk;
  }
  if (global.socket.empty())
    global.socket = lpd::protocol::default_socket_path(::geteuid(), lpd::protocol::process_env());

  for (auto& [sub, run] : runs) {
    if (!sub->parsed()) continue;
    try {
      return run(global);
    } catch (const UsageError& e) {  // refused before anything was sent
      std::cerr << "lpctl: " << sub->get_name() << ": " << e.what() << "\n";
      return kExitUsage;
    } catch (const DaemonUnreachable& e) {
      std::cerr << "lpctl: " << lpd::client::unreachable_text(e, socket_group_of(e)) << "\n";
      return kExitUnreachable;
    } catch (const lpd::protocol::Error& e) {
      std::cerr << "lpctl: " << sub->get_name() << ": " << e.what() << " [" << lpd::protocol::to_string(e.code())
                << "]\n";
      return kExitFailed;
    } catch (const std::exception& e) {
      std::cerr << "lpctl: " << sub->get_name() << ": " << e.what() << "\n";
      return kExitFailed;
    }
  }
  std::cout << app.help();
  return kExitUsage;
}
