#include "daemon/dispatcher.h"

#include <spdlog/spdlog.h>

#include "daemon/event_ring_mapping.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

void Responder::ok(json result) {
  if (answered_) return;
  answered_ = true;
  if (auto sink = sink_.lock()) sink->send(protocol::encode_reply_ok(id_, std::move(result)));
}

void Responder::fail(ErrorCode code, std::string_view message) {
  if (answered_) return;
  answered_ = true;
  if (auto sink = sink_.lock()) sink->send(protocol::encode_reply_error(id_, code, message));
}

bool Responder::connected() const {
  auto sink = sink_.lock();
  return sink && sink->open();
}

bool ReplySink::attach_ring(std::unique_ptr<MappedEventRing> ring) {
  (void)ring;
  return false;
}

Responder Call::defer() {
  deferred_ = true;
  return Responder(id, sink);
}

Dispatcher::Dispatcher(std::vector<Operation> table) : table_(std::move(table)) {}

const Operation* Dispatcher::find(std::string_view name) const {
  for (const auto& op : table_)
    if (op.name == name) return &op;
  return nullptr;
}

void Dispatcher::dispatch_line(std::string_view line, Peer& peer, const std::shared_ptr<ReplySink>& sink,
                               bool one_way_only) {
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
  Responder responder(id, sink);
  try {
    const Operation* op = find(message.op());
    if (!op) throw Error(ErrorCode::kUnknownOp, "unknown operation \"" + message.op() + "\"");
    if (!peer.said_hello && !op->allowed_before_hello)
      throw Error(ErrorCode::kBadRequest, "the first message on a connection must be \"hello\"");
    json result = op->handler(call);
    if (!notification && !call.deferred()) responder.ok(std::move(result));
  } catch (const Error& e) {
    responder.fail(e.code(), e.what());
  } catch (const std::exception& e) {
    spdlog::error("operation {} from pid {} failed: {}", message.op(), peer.pid, e.what());
    responder.fail(ErrorCode::kInternal, std::string("internal error: ") + e.what());
  }
}

}  // namespace lpd::daemon
