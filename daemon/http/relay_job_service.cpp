// pytest-relay-run's job API, the I/O edge of RelayJobs.
#include "daemon/http/relay_job_service.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

#include "daemon/core/access.h"
#include "daemon/http/job_text.h"
#include "daemon/http/local_call.h"
#include "daemon/http/relay_job_record.h"
#include "daemon/http/user_tokens.h"
#include "daemon/os/run_as.h"
#include "daemon/http/ws_frames.h"

extern char** environ;

namespace lpd::daemon::http {
namespace {

JobReply error_reply(int status, const std::string& message) {
  // "detail" is what pytest-relay-run's FastAPI errors carry; "error" lpd's.
  return {status, json{{"error", message}, {"detail", message}}, {}};
}

/// The environment of a job's pytest, as `lpctl run` gives its caller's:
/// for lpd's own user, lpd's environment (relay-run's server passes its
/// own); for any other user of a root lpd, a login's (HOME, USER, LOGNAME,
/// SHELL from the passwd database, a plain PATH, the locale), never root
/// lpd's variables, which may hold secrets. PWD is the job's cwd. The
/// shim's "lpd: run_id" banner is left out: relay-run's `text` is pytest's
/// own output (LPD_RUN_BANNER=0).
json job_environment(const Peer& peer, const std::string& cwd) {
  json env = json::object();
  const bool own_user = peer.uid == ::geteuid();
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    const std::string key = entry.substr(0, eq);
    if (key.rfind("LPD_", 0) == 0) continue;  // lpd sets its own for the run
    const bool locale = key == "LANG" || key == "LANGUAGE" || key == "TZ" || key.rfind("LC_", 0) == 0;
    if (own_user || locale) env[key] = entry.substr(eq + 1);
  }
  if (!own_user) {
    if (const auto user = user_entry(peer.uid)) {
      env["HOME"] = user->home.empty() ? "/" : user->home;
      env["USER"] = env["LOGNAME"] = user->name;
      env["SHELL"] = user->shell.empty() ? "/bin/sh" : user->shell;
    }
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  }
  if (!env.contains("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  env["PWD"] = cwd;
  env["LPD_RUN_BANNER"] = "0";
  return env;
}

std::string home_of(uid_t uid) {
  const auto user = user_entry(uid);
  return user && user->home.starts_with('/') ? user->home : "/";
}

}  // namespace

RelayJobService::RelayJobService(Dispatcher& dispatcher, EventBus& events, const AccessPolicy& access,
                                 const std::string& state_dir)
    : dispatcher_(dispatcher), events_(events), access_(access), store_(state_dir) {
  subscription_ = events_.subscribe([this](const Event& e) { on_event(e); });
  restore();
}

namespace {
/// Each user's job table: http/jobs/<uid>.json.
constexpr std::string_view kJobsDir = "http/jobs";
std::string jobs_file(uid_t owner) { return std::string(kJobsDir) + "/" + std::to_string(owner) + ".json"; }
/// The uid of a table's file name ("1001.json"): a token file's rule
/// (uid_of_token_file) before ".json"; nullopt for any other name.
std::optional<uid_t> owner_of_file(std::string_view name) {
  if (!name.ends_with(".json")) return std::nullopt;
  name.remove_suffix(5);
  return uid_of_token_file(name);
}
}  // namespace

RelayJobs& RelayJobService::table(uid_t owner) {
  return tables_.try_emplace(owner, static_cast<RelayJobs::Watcher*>(this)).first->second;
}

RelayJob* RelayJobService::find_by_run(const std::string& run_id) {
  for (auto& [owner, jobs] : tables_)
    if (RelayJob* job = jobs.find_by_run(run_id)) return job;
  return nullptr;
}

void RelayJobService::restore() {
  std::size_t restored = 0;
  std::vector<std::string> running;
  for (const std::string& name : store_.list(kJobsDir)) {
    const auto owner = owner_of_file(name);
    if (!owner) continue;  // a leftover of a write (".new"), or not lpd's
    const std::string relative = std::string(kJobsDir) + "/" + name;
    const auto file = store_.read_json(relative);
    if (!file) {
      // Not JSON lpd wrote (cut short, edited): kept aside for a person to
      // read, and said, not silently dropped.
      const std::string aside = store_.path(relative) + ".damaged";
      const bool moved = ::rename(store_.path(relative).c_str(), aside.c_str()) == 0;
      spdlog::error("http: the job table of uid {} ({}) is not one lpd wrote; its jobs are not restored{}", *owner,
                    store_.path(relative), moved ? " (moved to " + aside + ")" : "");
      continue;
    }
    std::size_t skipped = 0;
    std::vector<RelayJob> jobs = relay_jobs_from_file(*file, skipped);
    // A record of another user in this user's file is not theirs to claim.
    const auto others = std::erase_if(jobs, [&](const RelayJob& job) { return job.owner != *owner; });
    skipped += others;
    if (skipped > 0)
      spdlog::warn("http: {} job record(s) in {} were not restored", skipped, store_.path(relative));
    for (const RelayJob& job : jobs)
      if (job.running) running.push_back(job.run_id);
    restored += jobs.size();
    table(*owner).restore(std::move(jobs));
  }
  // The runs of jobs that were running may have ended, or be gone, while
  // lpd was down: run.info says (answered at once: no run is deferred).
  // As lpd's own user, who may read every run (a root lpd's or its only user's).
  auto peer = std::make_shared<Peer>(*http_peer("lpd restoring HTTP jobs", ::geteuid()));
  for (const std::string& run_id : running) {
    call_op(dispatcher_, peer, "run.info", json{{"run_id", run_id}}, [this, run_id](json reply) {
      RelayJob* job = find_by_run(run_id);
      if (!job) return;
      RelayJobs& jobs = table(job->owner);
      if (!reply.value("ok", false)) {
        const json error = reply.value("error", json::object());
        jobs.run_lost(run_id, "lpd no longer knows this job's run " + run_id + ": " +
                                  error.value("message", std::string("run.info failed")));
        return;
      }
      const json& info = reply["result"];
      std::optional<int> returncode;
      if (auto rc = info.find("returncode"); rc != info.end() && rc->is_number_integer()) returncode = rc->get<int>();
      std::optional<int> signal;
      if (auto sig = info.find("signal"); sig != info.end() && sig->is_number_integer()) signal = sig->get<int>();
      jobs.run_changed(run_id, info.value("state", std::string()), relay_returncode(returncode, signal));
    });
  }
  if (restored > 0)
    spdlog::info("http: {} job(s) restored from {}, {} of them running", restored, store_.path(kJobsDir),
                 running.size());
  for (const auto& [owner, jobs] : tables_) persist(owner);
}

void RelayJobService::persist(uid_t owner) {
  const std::string relative = jobs_file(owner);
  try {
    const auto it = tables_.find(owner);
    if (it == tables_.end() || it->second.size() == 0) {
      store_.remove(relative);
      return;
    }
    store_.write_json(relative, relay_jobs_file(it->second.all()), /*durable=*/false);
  } catch (const std::exception& e) {
    spdlog::error("http: cannot keep uid {}'s job table in {}: {}; a restarted lpd will not know these jobs", owner,
                  store_.path(relative), e.what());
  }
}

RelayJobService::~RelayJobService() { events_.unsubscribe(subscription_); }

std::string RelayJobService::fresh_id() {
  // A version-4 UUID, as relay-run makes when the client names none.
  static std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 32; ++i) {
    int digit = static_cast<int>(random() & 15);
    if (i == 12) digit = 4;
    if (i == 16) digit = 8 | (digit & 3);
    if (i == 8 || i == 12 || i == 16 || i == 20) id.push_back('-');
    id.push_back(kHex[digit]);
  }
  return id;
}

json RelayJobService::payload(const RelayJob& job, std::size_t max_text) {
  // The process's output; why the job has none, when lpd knows (its start
  // failed, or its run is gone); null before its first run.
  std::string output = job.log.empty() ? std::string() : job_output_text(job.log, max_text);
  struct stat st {};
  if (!job.log.empty() && output.empty() && ::lstat(job.log.c_str(), &st) != 0 && job.failure.empty())
    output = "[lpd: this job's output is gone: its run " + job.run_id +
             " was removed (lpd's retention, --keep-runs or --keep-days, or lpctl prune)]";
  json text = !output.empty() || (job.failure.empty() && !job.log.empty()) ? json(std::move(output))
              : job.failure.empty()                                         ? json(nullptr)
                                                                            : json(job.failure);
  return {{"id", job.id},
          {"state", std::string(to_string(job.state))},
          {"returncode", job.returncode ? json(*job.returncode) : json(nullptr)},
          {"text", std::move(text)}};
}

std::uint64_t RelayJobService::listen(Listener listener) {
  const std::uint64_t token = next_listener_++;
  listeners_.emplace(token, std::move(listener));
  return token;
}

void RelayJobService::announce(const RelayJob& job) {
  // WebSockets get the newest kMaxWsJobTextBytes of the text (so
  // job frames stay small and are never dropped); GET /jobs/{id} all of it.
  const json ws_payload = payload(job, kMaxWsJobTextBytes);
  // A listener may close its WebSocket (and unlisten) while we walk.
  std::vector<std::uint64_t> tokens;
  for (const auto& [token, listener] : listeners_) tokens.push_back(token);
  for (auto token : tokens)
    if (auto it = listeners_.find(token); it != listeners_.end()) it->second(ws_payload, job.owner);
  if (job.state == RelayState::kCollected) {
    const json p = payload(job);
    auto range = waiting_.equal_range(waiting_key(job.owner, job.id));
    std::vector<Respond> waiting;
    for (auto it = range.first; it != range.second; ++it) waiting.push_back(std::move(it->second));
    waiting_.erase(range.first, range.second);
    for (auto& respond : waiting) respond({201, p, "/jobs/" + job.id});
  }
}

void RelayJobService::on_event(const Event& e) {
  if (e.type == "run.started") {
    if (launching_) launched_run_ = e.run_id;
    return;
  }
  if (e.type != "job" || e.run_id.empty()) return;
  RelayJob* job = find_by_run(e.run_id);
  if (!job) return;  // not a job's, or its launch is still being answered
  const json& data = e.data();
  const json payload = data.value("payload", json::object());
  if (!payload.is_object()) return;
  std::optional<int> returncode;
  if (auto rc = payload.find("returncode"); rc != payload.end() && rc->is_number_integer()) returncode = rc->get<int>();
  std::optional<int> signal;
  if (auto sig = data.find("signal"); sig != data.end() && sig->is_number_integer()) signal = sig->get<int>();
  returncode = relay_returncode(returncode, signal);
  const std::string state = payload.value("state", std::string());
  const uid_t owner = job->owner;
  table(owner).run_changed(e.run_id, state, returncode);
  if (state == "terminating" || state == "done") persist(owner);
}

bool RelayJobService::is_relay_run(const std::string& run_id) const {
  if (launching_ && run_id == launched_run_) return true;
  for (const auto& [owner, jobs] : tables_)
    if (jobs.find_by_run(run_id)) return true;
  return false;
}

void RelayJobService::create(const json& body, std::shared_ptr<Peer> peer, Respond respond) {
  if (!body.is_object()) return respond(error_reply(400, "the request body must be a JSON object"));
  std::vector<std::string> given;
  std::size_t given_bytes = 0;
  if (auto a = body.find("args"); a != body.end() && !a->is_null()) {
    if (!a->is_array()) return respond(error_reply(400, "field \"args\" must be a list of strings"));
    for (const auto& arg : *a) {
      if (!arg.is_string()) return respond(error_reply(400, "field \"args\" must be a list of strings"));
      given.push_back(arg.get<std::string>());
      // A C string ends at NUL: pytest would get another argument than the one sent.
      if (given.back().find('\0') != std::string::npos)
        return respond(error_reply(400, "field \"args\" must not hold a NUL character"));
      given_bytes += given.back().size();
      if (given_bytes > kMaxArgsBytes)
        return respond(error_reply(400, "the args of a job hold at most " + std::to_string(kMaxArgsBytes / 1024) +
                                            " KiB (lpd keeps every job's args across restarts)"));
    }
  }
  std::string id;
  if (auto i = body.find("id"); i != body.end() && !i->is_null()) {
    if (!i->is_string()) return respond(error_reply(400, "field \"id\" must be a string"));
    id = i->get<std::string>();
    if (id.empty()) return respond(error_reply(400, "field \"id\" must not be empty"));
  }
  bool collect_only = false;
  if (auto c = body.find("collect_only"); c != body.end() && !c->is_null()) {
    if (!c->is_boolean()) return respond(error_reply(400, "field \"collect_only\" must be true or false"));
    collect_only = c->get<bool>();
  }
  std::string cwd;
  if (auto c = body.find("cwd"); c != body.end() && !c->is_null()) {
    if (!c->is_string() || c->get<std::string>().empty() || c->get<std::string>().front() != '/' ||
        c->get<std::string>().find('\0') != std::string::npos)
      return respond(error_reply(400, "field \"cwd\" must be an absolute path"));
    cwd = c->get<std::string>();
  } else {
    cwd = home_of(peer->uid);
  }
  try {
    if (given.size() > RelayJobs::kMaxArgs)
      throw RelayError(400, "a job takes at most " + std::to_string(RelayJobs::kMaxArgs) + " arguments");
    RelayArgs parsed = parse_relay_args(given, id);
    RelayJob& job = table(peer->uid).create(parsed.id, fresh_id(), peer->uid, std::move(parsed.args), std::move(cwd),
                                            collect_only);
    launch(job.id, collect_only, std::move(peer), 201, std::move(respond));
  } catch (const RelayError& e) {
    respond(error_reply(e.status(), e.what()));
  }
}

void RelayJobService::launch(const std::string& id, bool collecting, std::shared_ptr<Peer> peer, int ok_status,
                             Respond respond) {
  const uid_t owner = peer->uid;
  RelayJob& job = table(owner).get(id);
  json argv = json::array({"python3", "-m", "pytest"});
  if (collecting) argv.push_back("--collect-only");
  for (const auto& arg : job.args) argv.push_back(arg);
  json fields{{"argv", std::move(argv)}, {"cwd", job.cwd}, {"env", job_environment(*peer, job.cwd)}};
  if (job.id.size() <= 32) fields["name"] = job.id;  // the run id then starts with the job id
  launching_ = true;
  launched_run_.clear();
  auto answer = [this, owner, id, collecting, ok_status, respond = std::move(respond)](json reply) mutable {
    RelayJobs& jobs = table(owner);
    RelayJob* job = jobs.find(id);
    if (!reply.value("ok", false)) {
      const json error = reply.value("error", json::object());
      const std::string code = error.value("code", "internal");
      const std::string message = error.value("message", "run.start failed");
      const std::string why = "cannot start job " + id + ": " + message;
      jobs.launch_failed(id, why);
      persist(owner);
      // The job's cwd or python3 missing is the request's fault, not an unknown job.
      return respond(error_reply(code == "not_found" ? 400 : http_status_of(code), why));
    }
    if (!job) return respond(error_reply(404, "Job with ID '" + id + "' not found"));
    const json& result = reply["result"];
    jobs.launched(*job, result.value("run_id", ""), result.value("log", ""), collecting);
    persist(owner);
    spdlog::info("http: job {} runs as run {}{}", id, job->run_id, collecting ? " (collect only)" : "");
    if (collecting) {
      waiting_.emplace(waiting_key(owner, id), std::move(respond));
      return;
    }
    respond({ok_status, payload(*job), ok_status == 201 ? "/jobs/" + id : std::string()});
  };
  call_op(dispatcher_, std::move(peer), "run.start", std::move(fields), std::move(answer));
  launching_ = false;
}

void RelayJobService::action(const std::string& id, const json& body, std::shared_ptr<Peer> peer, Respond respond) {
  if (!body.is_object() || !body.contains("action") || !body["action"].is_string())
    return respond(error_reply(400, "the body must be {\"action\": \"start\"} or {\"action\": \"stop\"}"));
  const std::string what = body["action"].get<std::string>();
  try {
    const uid_t owner = peer->uid;
    RelayJob& job = table(owner).get(id);
    if (what == "start") {
      table(owner).check_start(job);
      return launch(id, /*collecting=*/false, std::move(peer), 200, std::move(respond));
    }
    if (what != "stop") return respond(error_reply(400, "Unsupported action '" + what + "'"));
    if (!job.running) return respond({200, payload(job), {}});  // relay-run: nothing to stop
    call_op(dispatcher_, std::move(peer), "run.stop", json{{"run_id", job.run_id}, {"signal", 2}},
            [this, owner, id, respond = std::move(respond)](json reply) {
              RelayJob* job = table(owner).find(id);
              if (!job) return respond(error_reply(404, "Job with ID '" + id + "' not found"));
              const json error = reply.value("error", json::object());
              // conflict: the run ended meanwhile; the job says so.
              if (!reply.value("ok", false) && error.value("code", "") != "conflict")
                return respond(error_reply(http_status_of(error.value("code", "internal")),
                                           "cannot stop job " + id + ": " + error.value("message", "")));
              respond({200, payload(*job), {}});
            });
  } catch (const RelayError& e) {
    respond(error_reply(e.status(), e.what()));
  }
}

JobReply RelayJobService::get(const std::string& id, const Peer& peer) {
  try {
    return {200, payload(table(peer.uid).get(id)), {}};
  } catch (const RelayError& e) {
    return error_reply(e.status(), e.what());
  }
}

JobReply RelayJobService::list(const Peer& peer) {
  json all = json::array();
  const auto jobs = table(peer.uid).all();
  const std::size_t share =
      std::max<std::size_t>(64 * 1024, kMaxListTextBytes / std::max<std::size_t>(1, jobs.size()));
  for (const RelayJob* job : jobs) {
    all.push_back(payload(*job, std::min(share, kMaxJobTextBytes)));
  }
  return {200, std::move(all), {}};
}

JobReply RelayJobService::remove(const std::string& id, const Peer& peer) {
  try {
    table(peer.uid).remove(id);
    persist(peer.uid);
    return {204, nullptr, {}};
  } catch (const RelayError& e) {
    return error_reply(e.status(), e.what());
  }
}

JobReply RelayJobService::remove_all(const Peer& peer) {
  try {
    table(peer.uid).remove_all();
    persist(peer.uid);
    return {204, nullptr, {}};
  } catch (const RelayError& e) {
    return error_reply(e.status(), e.what());
  }
}

}  // namespace lpd::daemon::http
