#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/core/operation.h"
#include "protocol/message.h"

namespace lpd::daemon {

/// Told after a session dispatched a batch (one read of its socket, one
/// drain of its event ring), before the ring's records are committed as
/// read: lpd writes its buffered journals there, so nothing a shim was told
/// lpd has, or stopped keeping, is only in lpd's memory.
///
/// Around each read of an event ring it is also told which ring was read
/// and how far, so the journals can say it (RunJournal's ring marks): an
/// lpd killed between the journal write and the commit leaves the next one
/// the same ring at the old read position, and the marks tell it which of
/// those records it must not record again.
class BatchWatcher {
 public:
  virtual ~BatchWatcher() = default;
  virtual void batch_ended() = 0;
  /// The records of one read of a ring follow (reads may nest).
  virtual void ring_read_begins() {}
  /// That read ended: ring `ring_id` (EventRingReader::ring_id) is read up
  /// to ring position `read_to`.
  virtual void ring_read_ended(std::uint64_t /*ring_id*/, std::uint64_t /*read_to*/) {}
  /// For a ring handed to this lpd by a process of `uid`: how far a
  /// previous lpd's journals of that user's runs hold its records
  /// (nullopt: no word of it). Asked once per ring.attach.
  virtual std::optional<std::uint64_t> ring_journaled_to(std::uint64_t /*ring_id*/, uid_t /*uid*/) {
    return std::nullopt;
  }
};

/// Dispatcher owns the operation table and runs every incoming line through
/// the same gates in the same order: decode, look up, hello first, check the
/// gate (find the object's owner, compare with the peer's credentials),
/// call, reply. Errors thrown by a handler become the error reply; nothing a
/// peer sends can escape as an exception into the event loop.
class Dispatcher {
 public:
  /// Throws std::logic_error when a row has no gate it can check (a kRead
  /// or kAct row without owner_of, or owner_of on another gate), a
  /// duplicate name, or no handler: a table bug shows at startup.
  /// `batches`: told at each end_of_batch() (null: nobody, in tests).
  explicit Dispatcher(OperationTable table, BatchWatcher* batches = nullptr);
  Dispatcher(const Dispatcher&) = delete;  // by_name_ points into table_
  Dispatcher& operator=(const Dispatcher&) = delete;
  explicit Dispatcher(std::vector<Operation> table, AccessPolicy access = {})
      : Dispatcher(OperationTable{std::move(table), access}) {}

  /// `one_way_only`: the line came through an event ring, where requests
  /// have no place (their reply would wait for the ring to be read).
  void dispatch_line(std::string_view line, Peer& peer, const std::shared_ptr<ReplySink>& sink,
                     bool one_way_only = false);
  /// Called by a session after it dispatched a batch: tells the
  /// BatchWatcher (see there).
  void end_of_batch() const {
    if (batches_) batches_->batch_ended();
  }
  /// The BatchWatcher (null: nobody, in tests).
  BatchWatcher* batches() const { return batches_; }
  const std::vector<Operation>& operations() const { return table_; }
  const Operation* find(std::string_view name) const;
  const AccessPolicy& access() const { return access_; }

 private:
  void dispatch(const protocol::Message& message, Peer& peer, const std::shared_ptr<ReplySink>& sink);
  /// Checks hello and the gate of `op` (nullptr: no such operation, named
  /// `op_name`), calls the handler and replies (unless a notification or
  /// deferred); every error becomes the reply.
  void run(const Operation* op, std::string_view op_name, Call& call);
  /// Throws permission_denied when the peer may not pass `op`'s gate.
  void check_gate(const Operation& op, const Call& call) const;
  std::vector<Operation> table_;
  /// table_ by name: two records a test look their op up.
  std::unordered_map<std::string_view, const Operation*> by_name_;
  /// The ops of the shim's per-test records (protocol::TestRecord), found
  /// once: null when the table has none.
  const Operation* test_start_ = nullptr;
  const Operation* test_finish_ = nullptr;
  AccessPolicy access_;
  BatchWatcher* batches_;
};

}  // namespace lpd::daemon
