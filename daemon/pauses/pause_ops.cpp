#include "daemon/pauses/pause_ops.h"

#include <optional>
#include <string>

#include "daemon/core/bounded_field.h"
#include "daemon/core/paging.h"
#include "daemon/pauses/pause_service.h"
#include "protocol/nodeid.h"

namespace lpd::daemon {
namespace {

using protocol::Error;
using protocol::ErrorCode;

/// What this caller may see of a pause (Call::view). Kept by value: a
/// pause.watch uses it after the call is gone.
PauseView view_for(const Call& call) {
  return [peer = call.peer, access = call.access](const Pause& pause) {
    return visible_to(peer, access, pause.owner, RecordKind::kPause, pause.to_json());
  };
}

DeferReply defer_of(Call& call) {
  return [&call] { return call.defer(); };
}

/// pause.list's "after": a previous reply's "next", or absent / null.
std::optional<PauseCursor> pause_cursor_field(const Call& call) {
  auto it = call.body.find("after");
  if (it == call.body.end() || it->is_null()) return std::nullopt;
  const auto created = it->is_object() ? it->find("created_at") : it->end();
  const auto id = it->is_object() ? it->find("pause_id") : it->end();
  if (!it->is_object() || created == it->end() || !created->is_number() || id == it->end() || !id->is_string())
    throw Error(ErrorCode::kBadRequest,
                "field \"after\" must be a previous reply's \"next\": {\"created_at\": T, \"pause_id\": ID}");
  return PauseCursor{created->get<double>(), id->get<std::string>()};
}

}  // namespace

json handle_pause_request(PauseService& pauses, Call& call) {
  const auto& f = call.fields;
  PauseRequest request;
  request.run_id = f.string("run_id");
  request.pause_id = f.optional_string("pause_id").value_or("");
  request.kind = f.optional_string("kind").value_or("failure");
  request.timeout = f.optional_seconds("timeout").value_or(request.timeout);
  request.nodeid = protocol::shortened_nodeid(f.optional_string("nodeid").value_or(""));  // as its test.start shortens it
  request.task = bounded_text(f.optional_string("task").value_or(""), kMaxPauseTextBytes);
  request.original_failure = bounded_text(f.optional_string("original_failure").value_or(""), kMaxPauseTextBytes);
  request.worker_id = bounded_text(f.optional_string("worker_id").value_or(""), kMaxHostnameBytes);
  request.hostname = bounded_text(f.optional_string("hostname").value_or(""), kMaxHostnameBytes);
  request.cwd = bounded_text(f.optional_string("cwd").value_or(""), kMaxCwdBytes);
  return pauses.request(request, call.peer, defer_of(call));
}

json handle_pause_resume(PauseService& pauses, Call& call) {
  const std::string id = call.fields.string("pause_id");
  ResumeRequest request;
  if (call.body.contains("result")) {
    const json& r = call.body["result"];
    if (!r.is_boolean() && !r.is_null())
      throw Error(ErrorCode::kBadRequest, "field \"result\" must be true, false or null (none)");
    request.has_result = true;
    if (r.is_boolean()) request.result = r.get<bool>();
  }
  request.reason = call.fields.optional_string("reason");
  request.failure_reason = call.fields.optional_string("failure_reason");
  for (auto* text : {&request.reason, &request.failure_reason})
    if (*text) **text = bounded_text(std::move(**text), kMaxPauseTextBytes);
  return {{"pause", pauses.resume(id, request)}};
}

json handle_pause_list(PauseService& pauses, Call& call) {
  const bool all = call.fields.optional_boolean("all").value_or(false);
  const std::string run_id = call.fields.optional_string("run_id").value_or("");
  const std::size_t limit = PageLimits::items(call.fields.optional_integer("limit"));
  const auto after = pause_cursor_field(call);
  PausePage page = pauses.list(all, run_id, limit, after, view_for(call));
  json next = nullptr;
  if (page.next) next = {{"created_at", page.next->created_at}, {"pause_id", page.next->pause_id}};
  json listed = json::array();
  for (auto& pause : page.pauses) listed.push_back(std::move(pause));
  return {{"pauses", std::move(listed)}, {"next", std::move(next)}};
}

json handle_pause_watch(PauseService& pauses, Call& call) {
  const std::string run_id = call.fields.string("run_id");
  const auto timeout = call.fields.optional_seconds("timeout");
  // Anyone may wait for a run's pauses; what they get of one is call.view's.
  PauseView view = view_for(call);
  if (auto pending = pauses.pending_pause_of(run_id, view)) return {{"pause", std::move(*pending)}};
  auto slot = call.sink->claim_stream("watch for pauses of run " + run_id);
  pauses.wait_for_pause(run_id, timeout, call.peer.session_id, std::move(view), std::move(slot), call.defer());
  return json();
}

json handle_pause_mirror(PauseService& pauses, Call& call) {
  const std::string run_id = call.fields.string("run_id");
  const std::string path = call.fields.string("pause_dir");
  return pauses.mirror(run_id, path, Credentials{call.peer.uid, call.peer.gid, call.peer.groups}, defer_of(call));
}

std::optional<Owned> pause_named(PauseService& pauses, const Call& call) {
  return pauses.owner_of(call.fields.string("pause_id"));
}

}  // namespace lpd::daemon
