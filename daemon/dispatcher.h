#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/peer.h"
#include "protocol/error.h"
#include "protocol/fields.h"
#include "protocol/message.h"

namespace lpd::daemon {

using protocol::json;

class MappedEventRing;

/// ReplySink is where the lines for one connection go. Sessions implement it;
/// tests implement it with a vector. `open()` turns false once the peer left,
/// so a deferred reply can tell nobody is waiting any more.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void send(std::string line) = 0;
  virtual bool open() const = 0;
  /// Hands every later byte of this connection to `on_bytes` instead of the
  /// line protocol (a traceback stream). False when the sink cannot.
  virtual bool switch_to_raw(std::function<void(std::string_view)> on_bytes) {
    (void)on_bytes;
    return false;
  }
  /// The descriptor the peer passed (SCM_RIGHTS) with the message being
  /// handled, now owned by the caller; -1 when there is none.
  virtual int take_passed_fd() { return -1; }
  /// From now on this connection's one-way messages also arrive through
  /// `ring` (see protocol/event_ring.h). False when the sink cannot.
  virtual bool attach_ring(std::unique_ptr<MappedEventRing> ring);
};

/// Responder answers one request exactly once, now or later. It holds the
/// sink weakly: a request whose peer is gone is answered into the void.
class Responder {
 public:
  Responder() = default;
  Responder(json id, std::weak_ptr<ReplySink> sink) : id_(std::move(id)), sink_(std::move(sink)) {}

  void ok(json result);
  void fail(protocol::ErrorCode code, std::string_view message);
  /// True while the peer that asked is still connected.
  bool connected() const;
  bool answered() const { return answered_; }

 private:
  json id_;
  std::weak_ptr<ReplySink> sink_;
  bool answered_ = false;
};

/// Call is one request (or notification) on its way through the dispatcher.
struct Call {
  const json& body;
  protocol::Fields fields;
  Peer& peer;
  std::shared_ptr<ReplySink> sink;
  bool is_notification;

  /// A handler that will answer later takes the responder and the
  /// dispatcher does not reply when the handler returns.
  Responder defer();
  bool deferred() const { return deferred_; }

  json id;
  bool deferred_ = false;
};

using Handler = std::function<json(Call&)>;

/// One row of the daemon's operation table.
struct Operation {
  std::string_view name;
  std::string_view summary;
  Handler handler;
  bool allowed_before_hello = false;
};

/// Dispatcher owns the operation table and runs every incoming line through
/// the same gates in the same order: decode, hello first, look up, call,
/// reply. Errors thrown by a handler become the error reply; nothing a peer
/// sends can escape as an exception into the event loop.
class Dispatcher {
 public:
  explicit Dispatcher(std::vector<Operation> table);

  /// `one_way_only`: the line came through an event ring, where requests
  /// have no place (their reply would wait for the ring to be read).
  void dispatch_line(std::string_view line, Peer& peer, const std::shared_ptr<ReplySink>& sink,
                     bool one_way_only = false);
  const std::vector<Operation>& operations() const { return table_; }
  const Operation* find(std::string_view name) const;

 private:
  void dispatch(const protocol::Message& message, Peer& peer, const std::shared_ptr<ReplySink>& sink);
  std::vector<Operation> table_;
};

}  // namespace lpd::daemon
