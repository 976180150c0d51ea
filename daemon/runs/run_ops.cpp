#include "daemon/runs/run_ops.h"

#include <optional>
#include <string>

#include "daemon/core/bounded_field.h"
#include "daemon/core/paging.h"
#include "daemon/runs/run_service.h"

namespace lpd::daemon {
namespace {

/// run.list's "after": a previous reply's "next", or absent / null.
std::optional<RunRegistry::Cursor> run_cursor_field(const Call& call) {
  auto it = call.body.find("after");
  if (it == call.body.end() || it->is_null()) return std::nullopt;
  const auto created = it->is_object() ? it->find("created_at") : it->end();
  const auto id = it->is_object() ? it->find("run_id") : it->end();
  if (!it->is_object() || created == it->end() || !created->is_number() || id == it->end() || !id->is_string())
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "field \"after\" must be a previous reply's \"next\": {\"created_at\": ..., \"run_id\": ...}");
  return RunRegistry::Cursor{created->get<double>(), id->get<std::string>()};
}

}  // namespace

json handle_run_register(RunService& runs, Call& call) {
  JoinRequest request;
  request.run_id = call.fields.optional_string("run_id").value_or("");
  request.worker_id = call.fields.optional_string("worker_id").value_or("");
  request.hostname = bounded_text(call.fields.optional_string("hostname").value_or(""), kMaxHostnameBytes);
  request.cwd = bounded_text(call.fields.optional_string("cwd").value_or(""), kMaxCwdBytes);
  request.argv = call.fields.string_list("argv");
  const RunJoined joined = runs.join(std::move(request), call.peer);
  return {{"run_id", joined.run_id}, {"worker_id", joined.worker_id}, {"new", joined.is_new}};
}

json handle_run_end(RunService& runs, Call& call) { return {{"ended", runs.end_part(call.peer)}}; }

json handle_run_list(RunService& runs, Call& call) {
  const bool all = call.fields.optional_boolean("all").value_or(false);
  const std::size_t limit = PageLimits::items(call.fields.optional_integer("limit"));
  const auto after = run_cursor_field(call);
  RunPage page = runs.list(all, limit, after, [&call](const Run& run, json record) {
    return call.view(RecordKind::kRun, run.owner, std::move(record));
  });
  json next = nullptr;
  if (page.next) next = {{"created_at", page.next->created_at}, {"run_id", page.next->run_id}};
  json listed = json::array();
  for (auto& run : page.runs) listed.push_back(std::move(run));
  return {{"runs", std::move(listed)}, {"next", std::move(next)}};
}

std::optional<Owned> existing_run(RunService& runs, const Call& call) {
  const std::string run_id = call.fields.optional_string("run_id").value_or("");
  if (run_id.empty()) return std::nullopt;
  const Run* run = runs.registry().find(run_id);
  if (!run) return std::nullopt;
  return Owned{"run " + run_id, run->owner};
}

}  // namespace lpd::daemon
