#include "daemon/history/history_ops.h"

#include "daemon/history/history.h"

#include <cmath>

namespace lpd::daemon {

namespace {
constexpr double kMaxKeepDays = 36500;  // a century
}  // namespace

json handle_prune(History& history, Call& call) {
  History::PruneRequest request;
  if (auto n = call.fields.optional_integer("keep_runs")) {
    if (*n < 0) throw protocol::Error(protocol::ErrorCode::kBadRequest, "field \"keep_runs\" must be 0 or more");
    request.keep_runs = static_cast<std::size_t>(*n);
  }
  if (const json* days = call.fields.raw("keep_days")) {
    // Days, not seconds: optional_seconds' words ("seconds between 0 and
    // one year") named the wrong unit. Past a century it is no limit.
    if (!days->is_number() || !std::isfinite(days->get<double>()) || days->get<double>() < 0 ||
        days->get<double>() > kMaxKeepDays)
      throw protocol::Error(protocol::ErrorCode::kBadRequest,
                            "field \"keep_days\" must be a number of days between 0 and " +
                                std::to_string(static_cast<int>(kMaxKeepDays)));
    request.keep_days = days->get<double>();
  }
  request.all = call.fields.optional_boolean("all").value_or(false);
  if (request.all && (request.keep_runs || request.keep_days))
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "field \"all\" removes every ended run: it takes no keep_runs or keep_days");
  request.dry_run = call.fields.optional_boolean("dry_run").value_or(false);
  if (auto skip = call.fields.optional_integer("skip")) {
    if (!request.dry_run)
      throw protocol::Error(protocol::ErrorCode::kBadRequest,
                            "field \"skip\" pages a dry run; a prune that removes pages by removing");
    if (*skip < 0) throw protocol::Error(protocol::ErrorCode::kBadRequest, "field \"skip\" must be 0 or more");
    request.skip = static_cast<std::size_t>(*skip);
  }
  // Which runs the caller may remove is a filter over many runs, each with
  // its own owner: the operation table's gate (kOwn) cannot check it, so
  // it stays here, per run.
  History::Pruned pruned =
      history.prune(request, [&call](const Run& run) { return call.may_access(run.owner); });
  json report = json::array();
  for (auto& line : pruned.runs) {
    const uid_t owner = line.value("owner_uid", static_cast<uid_t>(-1));
    report.push_back(call.view(RecordKind::kRun, owner, std::move(line)));
  }
  return {{"runs", std::move(report)}, {"dry_run", request.dry_run}, {"more", pruned.more},
          {"keep_runs", pruned.limits.keep_runs}, {"keep_days", pruned.limits.keep_days}, {"all", request.all}};
}

}  // namespace lpd::daemon
