#include "daemon/core/operation.h"

#include "daemon/core/event_ring_mapping.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

void Responder::ok(json result) {
  if (answered_) return;
  answered_ = true;
  if (auto sink = sink_.lock()) sink->send(protocol::encode_reply_ok(id_, std::move(result)));
  if (owed_) owed_->reset();  // the owed reply is queued now
}

void Responder::fail(ErrorCode code, std::string_view message) {
  if (answered_) return;
  answered_ = true;
  if (auto sink = sink_.lock()) sink->send(protocol::encode_reply_error(id_, code, message));
  if (owed_) owed_->reset();  // the owed reply is queued now
}

bool Responder::connected() const {
  auto sink = sink_.lock();
  return sink && sink->open();
}

bool ReplySink::attach_ring(std::unique_ptr<MappedEventRing> ring) {
  (void)ring;
  return false;
}

bool may_send_now(const std::weak_ptr<ReplySink>& sink, std::function<void()> resume) {
  auto s = sink.lock();
  if (!s || !s->open() || !s->congested()) return true;
  s->when_drained(std::move(resume));
  return false;
}

Responder Call::defer() {
  deferred_ = true;
  // The connection waits for this reply after a half-close; a
  // notification gets none, so none is owed.
  return Responder(id, sink, is_notification || !sink ? nullptr : sink->owe_reply());
}

json Call::view(RecordKind kind, uid_t owner, json record) const {
  return visible_to(peer, access, owner, kind, std::move(record));
}

bool Call::may_access(uid_t owner) const { return daemon::may_access(peer, owner, access); }

std::string_view to_string(Gate gate) {
  switch (gate) {
    case Gate::kOpen: return "open";
    case Gate::kOwn: return "own";
    case Gate::kList: return "list";
    case Gate::kRead: return "read";
    case Gate::kAct: return "act";
  }
  return "open";
}
}  // namespace lpd::daemon
