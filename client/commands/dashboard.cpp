// lpctl dashboard: the caller's own HTTP token and the URL to open.
#include <iostream>

#include "client/cli.h"
#include "client/commands/commands.h"

namespace lpd::client {

Command dashboard_command() {
  auto rotate = std::make_shared<bool>(false);
  return {"dashboard", "Print the URL of lpd's dashboard with your own HTTP token (lpd start --http)",
          [rotate](CLI::App& app) -> CommandRun {
            app.add_flag("--rotate", *rotate,
                         "Replace your token with a new one: the old one is refused from now on (pages and "
                         "WebSockets holding it are signed out)");
            app.footer(
                "lpd gives each user who asks on its socket a token of their own (256 random bits, made on the "
                "first request and kept across restarts). A request with it acts as that user, with exactly the "
                "rights `lpctl` has: a root lpd shared by a CI host's runners starts `POST /jobs` as you, and "
                "shows you other users' runs without their output. Paste the URL into a browser's address bar "
                "(never pass it to xdg-open or a browser command: every local user can read a process's "
                "arguments); the token is after '#', which the browser sends to no server, and the page holds "
                "it in memory only, so after a reload run this command again. Scripts send it as "
                "\"Authorization: Bearer TOKEN\" from a file (curl -H @FILE), never on a command line. lpd's own user's token is <state-dir>/http.token; another user's is kept by lpd "
                "in <state-dir>/http-tokens/<uid> (readable by lpd only): run this command again to see it. It is "
                "bound to your user (name and home directory): should your uid be given to another user, it "
                "stops working and they get a token of their own. "
                "Fails with [unavailable] when lpd was started without --http.");
            return [rotate](const GlobalOptions& global) {
              auto connection = global.connect();
              json fields = json::object();
              if (*rotate) fields["rotate"] = true;
              json reply = connection.request("http.token", fields);
              if (global.json) {
                print_json(reply);
                return kExitOk;
              }
              const std::string token = reply.value("token", "");
              std::cout << "Paste into a browser's address bar on lpd's host (or through a tunnel to "
                        << reply.value("address", "") << "):\n  " << reply.value("url", "") << "\n"
                        << "token:  " << token << (reply.value("rotated", false) ? "  (new: the old one is refused)" : "")
                        << "\n"
                        << "acts as uid " << reply.value("uid", -1) << ", with your rights on lpd's socket; "
                        << (reply.value("own_user", false) ? "also in " : "kept by lpd in ")
                        << reply.value("token_file", "") << "\n"
                        << "Scripts send \"Authorization: Bearer TOKEN\" from a file, never in a command's arguments; "
                        << "`lpctl dashboard --rotate` replaces it.\n";
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
