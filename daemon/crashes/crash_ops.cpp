#include "daemon/crashes/crash_ops.h"

#include <string>

#include "daemon/crashes/crash_store.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

json handle_crash_list(CrashStore& crashes, Call& call) {
  const std::string run_id = call.fields.optional_string("run_id").value_or("");
  const auto after = call.fields.optional_integer("after").value_or(0);
  if (after < 0) throw Error(ErrorCode::kBadRequest, "field \"after\" must be a crash_id (0 or more)");
  const auto limit = call.fields.optional_integer("limit").value_or(CrashStore::kDefaultPageLimit);
  if (limit < 1 || limit > static_cast<std::int64_t>(CrashStore::kMaxPageLimit))
    throw Error(ErrorCode::kBadRequest,
                "field \"limit\" must be between 1 and " + std::to_string(CrashStore::kMaxPageLimit));
  // From the in-memory index: O(page), no file read while others wait.
  const auto page = crashes.page(static_cast<std::uint64_t>(after), static_cast<std::size_t>(limit), run_id);
  json out = json::array();
  // Each record has its own owner, so who sees what of it is decided here,
  // per record (the gate is kList). A record without a valid owner is
  // nobody's: content for root and admins only.
  for (const Crash* crash : page.crashes) out.push_back(call.view(RecordKind::kCrash, crash->owner, crash->to_json()));
  return {{"crashes", std::move(out)}, {"next", page.next ? json(*page.next) : json(nullptr)}};
}

}  // namespace lpd::daemon
