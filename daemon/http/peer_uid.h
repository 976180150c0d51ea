// the local user on the other end of a loopback TCP connection.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lpd::daemon::http {

/// One end of a TCP connection: a v4 or v6 address (network byte order,
/// v4 in the first 4 bytes) and a port (host order).
struct TcpEnd {
  bool v6 = false;
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;
};

/// The uid owning the socket whose local end is `peer` and remote end is
/// `ours`, found in the text of /proc/net/tcp or /proc/net/tcp6 (lines
/// "sl local_address rem_address st ... uid ...", addresses as the kernel
/// prints them: each 32-bit word in host order as %08X, ":%04X" port).
/// nullopt when no line matches (not a local peer, or it closed).
std::optional<uid_t> socket_owner_in(std::string_view proc_net_tcp, const TcpEnd& peer, const TcpEnd& ours);

/// "0100007F:1F90" for 127.0.0.1:8080 on a little-endian machine: `end` as
/// /proc/net/tcp prints it.
std::string proc_net_address(const TcpEnd& end);

/// The uid of the process that owns the peer's socket of a loopback
/// connection (the I/O edge: reads /proc/net/tcp or tcp6, bounded).
/// nullopt when the peer is not on this machine or cannot be found.
std::optional<uid_t> loopback_peer_uid(const TcpEnd& peer, const TcpEnd& ours);

}  // namespace lpd::daemon::http
