// `lpd start --http ADDR:PORT`, parsed and checked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lpd::daemon::http {

/// Where the HTTP server listens: a numeric IPv4 or IPv6 address (IPv6 in
/// brackets, "[::1]:8080") or "localhost", and a port (0: the kernel picks one).
struct ListenAddress {
  std::string host;  // numeric: "127.0.0.1", "::1"
  std::uint16_t port = 0;
  bool loopback = false;
};

/// Parses `text` ("127.0.0.1:8080", "[::1]:0", "localhost:8080").
/// Throws std::invalid_argument saying what is wrong; a non-loopback
/// address is refused unless `allow_remote` (`--http-allow-remote`).
ListenAddress parse_listen_address(std::string_view text, bool allow_remote);

}  // namespace lpd::daemon::http
