#include <unistd.h>

#include <iostream>

#include "client/cli.h"
#include "client/commands/commands.h"

namespace lpd::client {

Command status_command() {
  return {"status", "Show the daemon's version, pid, uptime, socket, state directory and connections",
          [](CLI::App&) -> CommandRun {
            return [](const GlobalOptions& global) {
              auto connection = global.connect();
              json status = connection.request("status");
              if (global.json) {
                print_json(status);
                return kExitOk;
              }
              std::cout << "lpd " << status.value("version", "?") << " (protocol " << status.value("protocol", 0)
                        << ")\n"
                        << "pid:         " << status.value("pid", 0) << "\n"
                        << "uptime:      " << format_duration(status.value("uptime_seconds", 0.0)) << "\n"
                        << "socket:      " << status.value("socket", "") << "\n"
                        << "state dir:   " << status.value("state_dir", "") << "\n";
              // where `lpd start --http` listens (port 0 resolved);
              // the file is lpd's user's only: anyone else has a token of their own.
              if (const auto http = status.find("http"); http != status.end() && http->is_object()) {
                std::cout << "http:        " << http->value("url", "");
                if (status.value("uid", -1) == static_cast<long long>(::geteuid()))
                  std::cout << " (token in " << status.value("state_dir", "") << "/http.token; `lpctl dashboard` "
                            << "prints the URL to open)\n";
                else
                  std::cout << " (your own token and the URL to open: `lpctl dashboard`)\n";
              }
              const json connections = status.value("connections", json::object());
              std::cout << "connections: " << connections.value("open", 0) << " open, "
                        << connections.value("accepted_total", 0) << " since start\n";
              if (status.contains("counts")) {
                for (const auto& [name, count] : status["counts"].items())
                  std::cout << name << ":" << std::string(name.size() < 12 ? 12 - name.size() : 1, ' ') << count
                            << "\n";
              }
              // Crash records lpd holds in memory for a full or failing disk:
              // lost with a stop, so said where anyone looking will see it.
              if (const auto unwritten = status.find("unwritten_crash_records");
                  unwritten != status.end() && unwritten->is_object() && unwritten->value("count", 0) > 0)
                std::cout << "unwritten:   " << unwritten->value("count", 0)
                          << " crash record(s) held in memory, not yet on disk: " << unwritten->value("cause", "")
                          << " (lpd writes them when it can; `lpd stop` now would lose them)\n";
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
