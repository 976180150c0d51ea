#include "client/cli.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

namespace lpd::client {

Connection GlobalOptions::connect(std::string_view role) const {
  return Connection::open(socket, timeout(), role);
}

void print_json(const nlohmann::json& value) {
  // One write per document, flushed at once: whoever reads lpctl's stdout
  // through a pipe (`lpctl --json events --follow | jq`) gets each line as
  // it happens, not when stdio's buffer fills. std::cout and stdout share
  // the buffer (sync_with_stdio), so the order with other output holds.
  std::string line = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

std::string format_duration(double seconds) {
  char buf[64];
  if (seconds < 60) {
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  } else if (seconds < 3600) {
    const long s = std::lround(seconds);
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  } else {
    const long m = std::lround(seconds / 60);
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", m / 60, m % 60);
  }
  return buf;
}

}  // namespace lpd::client
