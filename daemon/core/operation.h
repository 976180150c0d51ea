#pragma once

// What an operation is, apart from the socket that carries it: the call a
// handler gets, how it answers (now or later), its gate and owner lookup, and
// the table row. Families implement handlers against these types alone; the
// dispatcher (transport/) runs them.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/access.h"
#include "daemon/core/peer.h"
#include "protocol/error.h"
#include "protocol/fields.h"
#include "protocol/message.h"
#include "protocol/test_record.h"

namespace lpd::daemon {

using protocol::json;

class MappedEventRing;

/// ReplySink is where the lines for one connection go. Sessions implement it;
/// tests implement it with a vector. `open()` turns false once the peer left,
/// so a deferred reply can tell nobody is waiting any more.
class ReplySink {
 public:
  /// Held by a long-lived stream (an attach, a log stream, a pause watch);
  /// the connection's slot is free again once the last copy is gone.
  using StreamSlot = std::shared_ptr<void>;

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
  /// True when the peer passed descriptors with the message being handled
  /// that never reached lpd: the kernel dropped them (MSG_CTRUNC), in
  /// practice because lpd had no free descriptor slot (EMFILE).
  virtual bool passed_fd_dropped() const { return false; }
  /// From now on this connection's one-way messages also arrive through
  /// `ring` (see protocol/event_ring.h). False when the sink cannot.
  virtual bool attach_ring(std::unique_ptr<MappedEventRing> ring);

  // -- backpressure: what lpd produces at its own pace waits for the reader --
  /// True while more is queued for the peer than producers may add to: a
  /// stream lpd produces itself (log output, an event replay) waits for
  /// when_drained() instead of sending.
  virtual bool congested() const { return false; }
  /// Calls `resume` once, after the queue drained below the mark (never
  /// from inside this call); dropped unanswered when the connection closes.
  virtual void when_drained(std::function<void()> resume) { (void)resume; }
  /// Claims one of the connection's stream slots. Throws protocol::Error
  /// limit_exceeded when all are taken (`what` names the stream).
  virtual StreamSlot claim_stream(std::string_view what) {
    (void)what;
    return std::make_shared<int>(0);
  }
  // -- (connection layer) replies still owed after a half-close --
  /// A request on this connection will be answered later (Call::defer).
  /// The connection counts that reply as owed while the returned token
  /// lives, so that a peer which ended its requests (shutdown(SHUT_WR)) is
  /// kept until every owed reply was sent. Null where nobody counts.
  virtual std::shared_ptr<void> owe_reply() { return nullptr; }
};

/// For a producer about to send a piece to `sink`: true when it may send
/// now (also when the peer is gone: the producer notices that itself);
/// false when the sink is congested, and then `resume` runs once it drained.
bool may_send_now(const std::weak_ptr<ReplySink>& sink, std::function<void()> resume);

/// Responder answers one request exactly once, now or later. It holds the
/// sink weakly: a request whose peer is gone is answered into the void.
class Responder {
 public:
  Responder() = default;
  /// `owed`: the sink's owe_reply() token, released once this reply is sent.
  Responder(json id, std::weak_ptr<ReplySink> sink, std::shared_ptr<void> owed = nullptr)
      : id_(std::move(id)),
        sink_(std::move(sink)),
        owed_(owed ? std::make_shared<std::shared_ptr<void>>(std::move(owed)) : nullptr) {}

  void ok(json result);
  void fail(protocol::ErrorCode code, std::string_view message);
  /// True while the peer that asked is still connected.
  bool connected() const;
  bool answered() const { return answered_; }

 private:
  json id_;
  std::weak_ptr<ReplySink> sink_;
  bool answered_ = false;
  // Shared by every copy, so whichever copy answers releases the token
  // (and an unanswered one goes with the last copy).
  std::shared_ptr<std::shared_ptr<void>> owed_;
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
  /// What this peer may see of a record owned by `owner` (visible_to()):
  /// list and stream handlers pass every item through it.
  json view(RecordKind kind, uid_t owner, json record) const;
  bool may_access(uid_t owner) const;

  json id;
  bool deferred_ = false;
  AccessPolicy access{};
  /// Set instead of `fields` (which are then empty) for a test.start or a
  /// passed test.finish in the shim's own text, on an op that takes them
  /// (Operation::test_records).
  const protocol::TestRecord* test_record = nullptr;
};

using Handler = std::function<json(Call&)>;

/// Who may call an operation; the dispatcher checks it before the handler
/// runs (look up, check owner from peer credentials, call, reply). The
/// table in protocol/README.md ("Who sees what") lists every operation's gate.
enum class Gate {
  kOpen,     // anyone who may connect; nothing of anyone's content in the reply
  kOwn,      // the caller's own connection or what it creates (it becomes the owner)
  kList,     // anyone; the handler passes each item through Call::view()
  kRead,     // the content of one object: owner, root, admin group
  kAct,      // act on one object: owner, root, admin group
};

std::string_view to_string(Gate gate);

/// The object a kRead / kAct call names and who owns it, as found by the
/// operation's resolver.
struct Owned {
  std::string what;  // "run 2026...", "process db", "pause 3f2a..." (for the error message)
  uid_t owner;
};

/// Finds the object a call names. Throws protocol::Error (not_found,
/// bad_request) when it names none; returns nullopt only where the call may
/// create the object (proc.ensure of a new name): there is no owner to check.
using OwnerOf = std::function<std::optional<Owned>(const Call&)>;

/// One row of the daemon's operation table.
struct Operation {
  std::string_view name;
  std::string_view summary;
  Gate gate;
  Handler handler;
  OwnerOf owner_of = nullptr;  // kRead and kAct only
  bool allowed_before_hello = false;
  /// The handler reads only Call::fields, never Call::body: the event ring's
  /// records of this op are decoded without a JSON tree (FlatMessage). For
  /// the per-test notifications, which come tens of thousands per run.
  bool flat_fields = false;
  /// The handler reads Call::test_record when it is set: this op's records
  /// in the shim's own text skip decoding (protocol/test_record.h). Only
  /// test.start and test.finish.
  bool test_records = false;
};

/// The whole table the dispatcher serves and the policy its gates apply.
struct OperationTable {
  std::vector<Operation> operations;
  AccessPolicy access;
};

}  // namespace lpd::daemon
