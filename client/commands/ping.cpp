#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "client/cli.h"
#include "client/commands/commands.h"

namespace lpd::client {

Command ping_command() {
  auto count = std::make_shared<int>(1);
  return {"ping", "Measure the round trip to the daemon over one connection",
          [count](CLI::App& app) -> CommandRun {
            app.add_option("-c,--count", *count, "Number of pings (default 1); prints min/median/p95/max")
                ->check(CLI::Range(1, 10'000'000));
            return [count](const GlobalOptions& global) {
              auto connection = global.connect();
              std::vector<double> micros;
              micros.reserve(static_cast<std::size_t>(*count));
              for (int i = 0; i < *count; ++i) {
                const auto start = std::chrono::steady_clock::now();
                connection.request("ping");
                micros.push_back(
                    std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
              }
              std::vector<double> sorted = micros;
              std::sort(sorted.begin(), sorted.end());
              auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * (sorted.size() - 1))]; };
              if (global.json) {
                print_json({{"count", sorted.size()},
                            {"min_us", sorted.front()},
                            {"median_us", at(0.5)},
                            {"p95_us", at(0.95)},
                            {"max_us", sorted.back()},
                            {"socket", global.socket}});
                return kExitOk;
              }
              if (*count == 1) {
                std::printf("pong from %s: %.1f us\n", global.socket.c_str(), micros.front());
              } else {
                std::printf("%zu pings to %s: min %.1f us, median %.1f us, p95 %.1f us, max %.1f us\n",
                            sorted.size(), global.socket.c_str(), sorted.front(), at(0.5), at(0.95),
                            sorted.back());
              }
              return kExitOk;
            };
          }};
}

}  // namespace lpd::client
