#include "daemon/daemon_ops.h"

#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/core/event_ring_mapping.h"
#include "daemon/core/resource_shortage.h"
#include "daemon/transport/session.h"
#include "protocol/version.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

json handle_hello(Daemon&, Call& call) {
  if (call.peer.said_hello) throw Error(ErrorCode::kConflict, "hello was already received on this connection");
  if (auto version = call.fields.optional_integer("protocol"); version && *version != protocol::kProtocolVersion) {
    throw Error(ErrorCode::kBadRequest, "protocol version " + std::to_string(*version) +
                                            " is not supported; this lpd speaks version " +
                                            std::to_string(protocol::kProtocolVersion));
  }
  call.peer.role = call.fields.optional_string("role").value_or("unknown");
  call.peer.client_name = call.fields.optional_string("client").value_or("");
  call.peer.said_hello = true;
  return {{"lpd_version", protocol::kLpdVersion},
          {"protocol", protocol::kProtocolVersion},
          {"server_pid", ::getpid()},
          {"session", call.peer.session_id},
          {"peer", {{"uid", call.peer.uid}, {"gid", call.peer.gid}, {"pid", call.peer.pid}}}};
}

json handle_ping(Daemon&, Call&) { return {{"pong", true}}; }

json handle_ring_attach(Daemon&, Call& call) {
  const int fd = call.sink->take_passed_fd();
  if (fd < 0 && call.sink->passed_fd_dropped()) {
    // The peer did pass it, but not one descriptor reached lpd: the kernel
    // could not install the first in lpd's table, which in practice means
    // the table is full (EMFILE). The request was right; lpd is short of
    // descriptors, so "unavailable", and the shim goes on on the socket.
    throw Error(ErrorCode::kUnavailable, "ring.attach: the ring's memfd was dropped on its way in: " +
                                             describe_shortage(EMFILE) +
                                             "; send on the socket, or attach again later");
  }
  if (fd < 0)
    throw Error(ErrorCode::kBadRequest, "ring.attach needs the ring's memfd passed with SCM_RIGHTS in the same message");
  auto ring = MappedEventRing::map(fd);
  const auto capacity = ring->reader().capacity();
  if (!call.sink->attach_ring(std::move(ring)))
    throw Error(ErrorCode::kBadRequest, "this connection cannot take an event ring");
  // phase_mark: the shim may say a test's call and teardown in the ring's
  // header instead of a test.phase record each (protocol::PhaseMark).
  // read_by: lpd keeps the ring's read-by word (RingPoller), and
  // monotonic_ns is its clock now, so the shim can tell whether that word
  // is on its own clock (a time namespace would shift it) and how closely.
  return {{"capacity", capacity},
          {"window_ms", Session::kRingWindow.count()},
          {"phase_mark", true},
          {"read_by", true},
          {"monotonic_ns", RingPoller::monotonic_ns(RingPoller::Clock::now())}};
}

json handle_status(Daemon& daemon, Call&) {
  const auto now = std::chrono::system_clock::now();
  const double uptime = std::chrono::duration<double>(now - daemon.started_at()).count();
  return {{"version", protocol::kLpdVersion},
          {"protocol", protocol::kProtocolVersion},
          {"pid", ::getpid()},
          {"uid", ::geteuid()},
          {"started_at", std::chrono::duration<double>(daemon.started_at().time_since_epoch()).count()},
          {"uptime_seconds", uptime},
          {"socket", daemon.config().socket_path},
          {"socket_activated", daemon.socket_from_systemd()},
          {"state_dir", daemon.config().state_dir},
          // where the HTTP API listens (lpd start --http), null when off
          {"http", daemon.http_address().empty() ? json(nullptr) : json{{"address", daemon.http_address()},
                                                                         {"url", "http://" + daemon.http_address() + "/"}}},
          {"connections",
           {{"open", daemon.server().open_sessions()}, {"accepted_total", daemon.server().accepted_total()}}},
          {"counts",
           {{"active_runs", daemon.runs().registry().active_count()},
            {"pending_pauses", daemon.pauses().registry().pending_count()}}},
          // Crash records held in memory because the state directory refused
          // them (full disk): `lpd stop` warns that a stop now loses them.
          {"unwritten_crash_records",
           {{"count", daemon.crashes().unwritten()}, {"cause", daemon.crashes().cause()}}}};
}

json handle_operations(Daemon& daemon, Call&) {
  json list = json::array();
  for (const auto& op : daemon.dispatcher().operations())
    list.push_back({{"op", op.name}, {"summary", op.summary}, {"gate", to_string(op.gate)}});
  return {{"operations", list}};
}

}  // namespace lpd::daemon
