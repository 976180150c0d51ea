#include "daemon/transport/dispatcher.h"
#include "daemon/core/storage_failure.h"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "daemon/core/event_ring_mapping.h"
#include "protocol/flat_message.h"
#include "protocol/test_record.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

Dispatcher::Dispatcher(OperationTable table, BatchWatcher* batches)
    : table_(std::move(table.operations)), access_(table.access), batches_(batches) {
  for (std::size_t i = 0; i < table_.size(); ++i) {
    const Operation& op = table_[i];
    const std::string name(op.name);
    const bool one_object = op.gate == Gate::kRead || op.gate == Gate::kAct;
    if (!op.handler) throw std::logic_error("operation " + name + " has no handler");
    if (one_object && !op.owner_of)
      throw std::logic_error("operation " + name + " is gated on one object but says no way to find its owner");
    if (!one_object && op.owner_of)
      throw std::logic_error("operation " + name + " has an owner lookup its gate never uses");
    if (!by_name_.emplace(op.name, &op).second) throw std::logic_error("operation " + name + " is listed twice");
    if (op.test_records && op.name != "test.start" && op.name != "test.finish")
      throw std::logic_error("operation " + name + " says it takes test records, which are test.start's and test.finish's");
  }
  test_start_ = find("test.start");
  test_finish_ = find("test.finish");
}

void Dispatcher::check_gate(const Operation& op, const Call& call) const {
  if (op.gate != Gate::kRead && op.gate != Gate::kAct) return;
  const std::optional<Owned> object = op.owner_of(call);
  if (!object) return;  // the call creates it: the caller becomes its owner
  if (op.gate == Gate::kRead) {
    require_may_read(call.peer, object->owner, object->what, access_);
  } else {
    require_may_act(call.peer, object->owner, object->what, access_);
  }
}

const Operation* Dispatcher::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void Dispatcher::dispatch_line(std::string_view line, Peer& peer, const std::shared_ptr<ReplySink>& sink,
                               bool one_way_only) {
  // The two records of every passing test, in the shim's own text: read
  // off the line, no decoding. (A request never starts that way.)
  if (const auto record = protocol::parse_test_record(line)) {
    const Operation* op = record->kind == protocol::TestRecord::Kind::kStart ? test_start_ : test_finish_;
    if (op && op->test_records) {
      static const json kNoBody = json::object();
      static const protocol::FlatMessage kNoFields;
      Call call{kNoBody, protocol::Fields(kNoFields), peer, sink, /*is_notification=*/true, json(nullptr)};
      call.test_record = &*record;
      run(op, op->name, call);
      return;
    }
  }
  // The per-test notifications (from the ring, or on the socket from the
  // native shim and a shim without a ring): no JSON tree when the op allows
  // it. A request is never flat (it has an id): the scan costs it little.
  if (auto flat = protocol::parse_flat_message(line)) {
    if (const Operation* op = find(flat->op); op && op->flat_fields) {
      static const json kNoBody = json::object();  // flat_fields handlers never read it
      Call call{kNoBody, protocol::Fields(*flat), peer, sink, /*is_notification=*/true, json(nullptr)};
      run(op, flat->op, call);
      return;
    }
  }
  protocol::Message message;
  try {
    message = protocol::parse_message(line);
  } catch (const Error& e) {
    // Not even an envelope: there is no id to answer to, so answer to null.
    sink->send(protocol::encode_reply_error(nullptr, e.code(), e.what()));
    return;
  }
  if (message.kind == protocol::Kind::kReply || message.kind == protocol::Kind::kPush) {
    sink->send(protocol::encode_reply_error(
        nullptr, ErrorCode::kBadRequest, "the daemon accepts requests and notifications only"));
    return;
  }
  if (one_way_only && message.kind == protocol::Kind::kRequest) {
    sink->send(protocol::encode_reply_error(message.id(), ErrorCode::kBadRequest,
                                            "the event ring carries one-way messages only; send requests on the socket"));
    return;
  }
  dispatch(message, peer, sink);
}

void Dispatcher::dispatch(const protocol::Message& message, Peer& peer,
                          const std::shared_ptr<ReplySink>& sink) {
  const bool notification = message.kind == protocol::Kind::kNotification;
  const json id = notification ? json(nullptr) : message.id();
  Call call{message.body, protocol::Fields(message.body), peer, sink, notification, id};
  const std::string& op_name = message.op();
  run(find(op_name), op_name, call);
}

void Dispatcher::run(const Operation* op, std::string_view op_name, Call& call) {
  Peer& peer = call.peer;
  const bool notification = call.is_notification;
  call.access = access_;
  Responder responder(call.id, call.sink);
  try {
    if (!op) throw Error(ErrorCode::kUnknownOp, "unknown operation \"" + std::string(op_name) + "\"");
    if (!peer.said_hello && !op->allowed_before_hello)
      throw Error(ErrorCode::kBadRequest, "the first message on a connection must be \"hello\"");
    check_gate(*op, call);
    json result = op->handler(call);
    if (!notification && !call.deferred()) responder.ok(std::move(result));
  } catch (const Error& e) {
    responder.fail(e.code(), e.what());
  } catch (const StorageFailure& e) {
    // A full or failing disk is the machine's state, not a bug: the client
    // hears which directory and why, and may retry once there is room.
    spdlog::error("operation {} from pid {} failed: {}", op_name, peer.pid, e.what());
    responder.fail(e.is_resource_shortage() ? ErrorCode::kUnavailable : ErrorCode::kInternal, e.what());
  } catch (const std::exception& e) {
    spdlog::error("operation {} from pid {} failed: {}", op_name, peer.pid, e.what());
    responder.fail(ErrorCode::kInternal, std::string("internal error: ") + e.what());
  }
}

}  // namespace lpd::daemon
