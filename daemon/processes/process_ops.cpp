#include "daemon/processes/process_ops.h"

#include "daemon/os/as_user.h"
#include "daemon/os/run_as.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <memory>

#include "daemon/core/access.h"
#include "daemon/core/bounded_field.h"
#include "daemon/core/paging.h"
#include "daemon/processes/process_list_view.h"
#include "daemon/logs/pattern.h"
#include "daemon/os/proc_stat.h"
#include "daemon/processes/process_name.h"
#include "daemon/processes/process_record_json.h"
#include "daemon/processes/process_service.h"
#include "protocol/signal_names.h"

namespace lpd::daemon {
namespace {

using protocol::Error;
using protocol::ErrorCode;

constexpr double kDefaultEnsureTimeout = 120;

std::string what(const ProcessKey& key) { return "process " + key.full_name(); }

/// The name field, checked so it can become a file name.
std::string name_field(const Call& call) {
  std::string name = call.fields.string("name");
  require_valid_process_name(name);
  return name;
}

/// the optional `owner` field (a uid), as proc.* calls take it.
std::optional<uid_t> owner_field(const Call& call) {
  const auto owner = call.fields.optional_integer("owner");
  if (!owner) return std::nullopt;
  if (*owner < 0 || *owner >= static_cast<std::int64_t>(static_cast<uid_t>(-1)))
    throw Error(ErrorCode::kBadRequest, "field \"owner\" must be a uid");
  return static_cast<uid_t>(*owner);
}

/// How the call names a helper: `full_name` ("<scope>::<name>"), or
/// `name` with an optional `scope`; `owner` (a uid) picks among users.
ProcessAddress address_field(const Call& call) {
  ProcessAddress address;
  if (auto full = call.fields.optional_string("full_name")) {
    auto [scope, name] = split_full_name(*full);
    if (call.fields.has("name") && call.fields.string("name") != name)
      throw Error(ErrorCode::kBadRequest, "fields \"name\" and \"full_name\" name different processes");
    address.name = std::move(name);
    address.scope = std::move(scope);
  } else {
    address.name = name_field(call);
    if (auto scope = call.fields.optional_string("scope")) address.scope = normalize_scope(*scope);
  }
  address.owner = owner_field(call);  // one reader of "owner"
  return address;
}

// -- owners by name, and which records count -------------------------
/// "alice (uid 1000)", or "uid 1000" when the user database has no name
/// for it (a deleted user): for messages that ask the caller to choose.
std::string owner_name(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || !found) return uid_text(uid);
  return std::string(pw.pw_name) + " (uid " + std::to_string(uid) + ")";
}

/// The helper the call names, for this caller (ProcessRegistry::resolve).
/// Killing or releasing means a running helper: other users' ended records
/// do not make the name ambiguous while one runs. Reading (info, logs)
/// counts ended ones too: a crashed helper's log is a thing one reads.
ProcessKey key_field(ProcessService& processes, const Call& call) {
  ProcessAddress address = address_field(call);
  const auto op = call.body.find("op");
  if (op != call.body.end() && op->is_string())
    address.running_first = *op == "proc.kill" || *op == "proc.release";
  return processes.registry().resolve(address, call.peer.uid, owner_name);
}

/// Supplementary groups of a user from the group database.
std::chrono::milliseconds grace_field(const Call& call) {
  const double seconds = call.fields.optional_seconds("grace").value_or(ProcessService::kDefaultGraceSeconds);
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

int signal_field(const Call& call) {
  if (!call.fields.has("signal")) return SIGTERM;
  std::optional<int> signo;
  std::string shown;
  if (call.body["signal"].is_number()) {
    const auto n = call.fields.integer("signal");
    shown = std::to_string(n);
    if (n > 0 && n < NSIG) signo = static_cast<int>(n);
  } else {
    shown = call.fields.string("signal");
    signo = protocol::signal_number(shown);
  }
  if (!signo) throw Error(ErrorCode::kBadRequest, "unknown signal \"" + shown + "\"");
  return *signo;
}

/// proc.kill_all's reply: "killed", "kept", "released" (each
/// entry as list_view cuts it) and "killed_count", "kept_count",
/// "released_count" (all of them), "omitted" (entries left out so the
/// reply stays within PageLimits::kMaxReplyBytes). A kill that was done is
/// always counted: the reply never fails for its size.
class KillAllReply {
 public:
  void add(const std::string& kind, json entry) {
    ++counts_[kind];
    json cut = list_view(std::move(entry));
    if (!budget_.take(cut.dump(-1, ' ', false, json::error_handler_t::replace).size())) {
      ++omitted_;
      return;
    }
    lists_[kind].push_back(std::move(cut));
  }
  json result() const {
    json out;
    for (const char* kind : {"killed", "kept", "released"}) {
      const auto list = lists_.find(kind);
      out[kind] = list == lists_.end() ? json::array() : list->second;
      const auto count = counts_.find(kind);
      out[std::string(kind) + "_count"] = count == counts_.end() ? 0 : count->second;
    }
    out["omitted"] = omitted_;
    return out;
  }

 private:
  PageBudget budget_{PageLimits::kMaxItems, PageLimits::kMaxReplyBytes};
  std::map<std::string, json> lists_;
  std::map<std::string, std::size_t> counts_;
  std::size_t omitted_ = 0;
};

}  // namespace

json handle_proc_ensure(ProcessService& processes, Call& call) {
  const auto& f = call.fields;
  EnsureRequest request;
  request.name = name_field(call);
  request.scope = normalize_scope(f.optional_string("scope").value_or(""));
  // Absent or null: ready once spawned. An empty text would match any line.
  // compiled by the service (a bad regex is refused before
  // anything else happens), except when it is the running helper's own.
  if (auto pattern = f.optional_string("pattern")) {
    request.pattern = *pattern;
    if (request.pattern.empty()) Pattern::compile(request.pattern);  // refused: it would match any line
  }
  request.argv = f.string_list("argv");
  if (request.argv.empty() || request.argv.front().empty())
    throw Error(ErrorCode::kBadRequest, "field \"argv\" must name a command to run");
  check_argv_size(request.argv, kMaxHelperArgvBytes, "a helper's");  // its record and events carry it
  request.cwd = f.optional_string("cwd").value_or("/");
  if (request.cwd.empty() || request.cwd.front() != '/')
    throw Error(ErrorCode::kBadRequest, "field \"cwd\" must be an absolute path");
  check_cwd_length(request.cwd);
  for (auto& [key, value] : f.string_map("env")) {
    if (key.empty() || key.find('=') != std::string::npos)
      throw Error(ErrorCode::kBadRequest, "environment variable name \"" + key + "\" is not valid");
    request.env.push_back(key + "=" + value);
  }
  request.timeout = f.optional_seconds("timeout").value_or(kDefaultEnsureTimeout);
  if (request.timeout <= 0) throw Error(ErrorCode::kBadRequest, "field \"timeout\" must be above 0");
  request.max_read_lines = f.optional_integer("max_read_lines").value_or(0);
  if (request.max_read_lines < 0) throw Error(ErrorCode::kBadRequest, "field \"max_read_lines\" must be 0 or more");
  request.restart = f.optional_boolean("restart").value_or(false);
  request.keep_on_timeout = f.optional_boolean("keep_on_timeout").value_or(false);
  request.lease = f.optional_boolean("lease").value_or(false);
  // reuse or join only (the client sends its environment once a start is due).
  request.only_if_running = f.optional_boolean("only_if_running").value_or(false);
  if (request.only_if_running && request.restart)
    throw Error(ErrorCode::kBadRequest, "fields \"only_if_running\" and \"restart\" contradict each other");
  request.linger = f.optional_seconds("linger").value_or(0);
  if (request.linger > kMaxLingerSeconds) throw Error(ErrorCode::kBadRequest, "field \"linger\" must be at most a day");
  const auto keep_logs = f.optional_integer("keep_logs").value_or(static_cast<std::int64_t>(kDefaultKeptLogs));
  if (keep_logs < 1 || keep_logs > static_cast<std::int64_t>(kMaxKeptLogs))
    throw Error(ErrorCode::kBadRequest, "field \"keep_logs\" must be from 1 to " + std::to_string(kMaxKeptLogs));
  request.keep_logs = static_cast<std::uint64_t>(keep_logs);
  request.session = call.peer.session_id;
  request.owner = call.peer.uid;
  request.credentials = run_as(call.peer);
  // The command and working directory as the caller sees them: a root lpd
  // tells nobody what lies in a directory they cannot read.
  // checked only when this call may start something (the service says
  // when); a reuse runs nothing and forks no checker.
  auto check_start = [](const EnsureRequest& asked) {
    check_runnable_as(asked.credentials, asked.argv.front(), asked.env, asked.cwd);
  };

  // Another user's process of this name: the dispatcher's gate refused
  // before we got here (existing_process_named).
  auto& service = processes;
  Responder responder = call.defer();
  auto answer = [responder, &service](const SupervisedProcess* ready, const ProcessService::EnsureAnswer& how,
                                      const StartFailure* failure) mutable {
    if (failure) {
      responder.fail(failure->code, failure->message);
    } else if (!ready) {
      // only_if_running, and nothing runs: nothing was done.
      responder.ok({{"outcome", to_string(how.outcome)}, {"reused", false}});
    } else {
      responder.ok(service.ensure_result(*ready, how));
    }
  };
  service.ensure(std::move(request), std::move(answer), check_start);
  return json();
}

// a page at a time (as run.list), each record cut for a list
// (list_view): thousands of helpers with long argv stay under the
// protocol's line limit. The cursor is the last record's generation, so a
// record forgotten between two pages does not lose the reader's place.
json handle_proc_list(ProcessService& processes, Call& call) {
  const bool all = call.fields.optional_boolean("all").value_or(false);
  const auto owner = owner_field(call);  // lpctl ps --owner
  std::optional<std::string> scope;      // --xshow asks for its project's only
  if (auto s = call.fields.optional_string("scope")) scope = normalize_scope(*s);
  const std::size_t limit = PageLimits::items(call.fields.optional_integer("limit"));
  std::uint64_t after = 0;
  if (auto it = call.body.find("after"); it != call.body.end() && !it->is_null()) {
    const auto generation = it->is_object() ? it->find("generation") : it->end();
    if (!it->is_object() || generation == it->end() || !generation->is_number_unsigned())
      throw Error(ErrorCode::kBadRequest, "field \"after\" must be a previous reply's \"next\": {\"generation\": N}");
    after = generation->get<std::uint64_t>();
  }
  auto& service = processes;
  PageBudget page(limit, PageLimits::kMaxReplyBytes);
  json list = json::array();
  std::optional<std::uint64_t> last;
  bool more = false;
  for (const auto* record : service.registry().after_generation(after)) {
    if (owner && record->owner != *owner) continue;
    // A scope is content: another user's record is never matched by it
    // (a filter would tell who has a helper in which directory).
    if (scope && (record->scope != *scope || !call.may_access(record->owner))) continue;
    if (!all && !service.tree_runs(*record)) continue;
    json item = call.view(RecordKind::kProcess, record->owner, list_view(service.describe(*record)));
    if (!page.take(item.dump(-1, ' ', false, json::error_handler_t::replace).size())) {
      more = true;
      break;
    }
    list.push_back(std::move(item));
    last = record->generation;
  }
  json next = nullptr;
  if (more && last) next = {{"generation", *last}};
  return {{"processes", std::move(list)}, {"next", std::move(next)}};
}

json handle_proc_info(ProcessService& processes, Call& call) {
  const ProcessKey key = key_field(processes, call);
  auto& service = processes;
  const auto* record = service.registry().find(key);
  json info = service.describe(*record);
  info["alive"] = is_running(record->state) && check_liveness(record->pid, record->start_time) == Liveness::kAlive;
  return info;
}

json handle_proc_kill(ProcessService& processes, Call& call) {
  const ProcessKey key = key_field(processes, call);
  const int signo = signal_field(call);
  const auto grace = grace_field(call);
  const bool force = call.fields.optional_boolean("force").value_or(false);
  auto& service = processes;
  // One holder's teardown only lets go while others hold it.
  if (auto released = service.release_instead_of_kill(key, call.peer.session_id, force)) return *released;
  Responder responder = call.defer();
  service.kill(key, signo, grace, [responder](const json& result) mutable { responder.ok(result); });
  return json();
}

json handle_proc_release(ProcessService& processes, Call& call) {
  const ProcessKey key = key_field(processes, call);
  return processes.release(key, call.peer.session_id);
}

json handle_proc_kill_all(ProcessService& processes, Call& call) {
  const int signo = signal_field(call);
  const auto grace = grace_field(call);
  // as pytest-xprocess's --xkill (every helper of the project's
  // own .xprocess directory): the caller's own helpers, or `owner`'s for
  // root and the admin group, in `scope` when given, else in every scope.
  // Helpers other connections hold are left running unless `force`
  // (kill_all_verdict); the reply lists them under "kept".
  // Checked here, not in the operation table's owner column: the call
  // names no one helper but every helper of `owner` (the caller by
  // default: its gate is kOwn), and the refusal names that user.
  const uid_t owner = owner_field(call).value_or(call.peer.uid);
  if (!call.may_access(owner))
    throw Error(ErrorCode::kPermissionDenied, "the processes of " + owner_name(owner) + " are not uid " +
                                                  std::to_string(call.peer.uid) + "'s to kill");
  std::optional<std::string> scope;
  if (auto s = call.fields.optional_string("scope")) scope = normalize_scope(*s);
  const bool force = call.fields.optional_boolean("force").value_or(false);
  auto& service = processes;
  std::vector<ProcessKey> names;
  // a helper whose leader exited while its tree runs on (a
  // daemonizing server) is running too: proc.kill stops what it left.
  for (const auto* record : service.registry().all())
    if (record->owner == owner && (!scope || record->scope == *scope) && service.tree_runs(*record))
      names.push_back(record->key());
  /// the reply lists what was done, bounded (KillAllReply): each
  /// entry cut as a list cuts it, at most half the line limit of entries,
  /// and the counts of every kind whatever was left out.
  auto reply = std::make_shared<KillAllReply>();
  std::vector<ProcessKey> to_kill;
  for (const auto& key : names) {
    if (auto spared = service.spare_from_kill_all(key, call.peer.session_id, force)) {
      const char* kind = spared->value("kept", false) ? "kept" : "released";
      reply->add(kind, std::move(*spared));
    } else {
      to_kill.push_back(key);
    }
  }
  Responder responder = call.defer();
  if (to_kill.empty()) {
    responder.ok(reply->result());
    return json();
  }
  /// Collects the kills' results and answers once the last one is gone.
  struct Gather {
    Responder responder;
    std::size_t left;
    std::shared_ptr<KillAllReply> reply;
  };
  auto gather = std::make_shared<Gather>(Gather{responder, to_kill.size(), reply});
  for (const auto& name : to_kill) {
    service.kill(name, signo, grace, [gather](const json& result) {
      gather->reply->add("killed", result);
      if (--gather->left == 0) gather->responder.ok(gather->reply->result());
    });
  }
  return json();
}

json handle_proc_logs(ProcessService& processes, Call& call) {
  const ProcessKey key = key_field(processes, call);
  std::optional<std::uint64_t> lines;
  if (auto n = call.fields.optional_integer("lines")) {
    if (*n < 0) throw Error(ErrorCode::kBadRequest, "field \"lines\" must be 0 or more");
    lines = static_cast<std::uint64_t>(*n);
  }
  const bool follow = call.fields.optional_boolean("follow").value_or(false);
  auto slot = call.sink->claim_stream("log stream of process " + key.full_name());
  return processes.stream_logs(key, lines, follow, call.peer.session_id, call.sink, std::move(slot));
}

std::optional<Owned> process_named(ProcessService& processes, const Call& call) {
  const ProcessKey key = key_field(processes, call);
  // Another user's helper is named by its name alone, as before scopes
  // ("process db belongs to uid N"): its scope is not the caller's to see.
  return Owned{key.owner == call.peer.uid ? what(key) : "process " + key.name, key.owner};
}

std::optional<Owned> existing_process_named(ProcessService& processes, const Call& call) {
  // An ensure only ever starts or reuses the caller's own helper: the key
  // holds the caller's uid, so another user's of the same name is never it.
  const ProcessKey key{call.peer.uid, normalize_scope(call.fields.optional_string("scope").value_or("")), name_field(call)};
  const auto* record = processes.registry().find(key);
  if (!record) return std::nullopt;
  return Owned{what(key), record->owner};
}

}  // namespace lpd::daemon
