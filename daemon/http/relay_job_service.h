// pytest-relay-run's job API, the I/O edge of RelayJobs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "daemon/transport/dispatcher.h"
#include "daemon/core/event_bus.h"
#include "daemon/http/job_text.h"
#include "daemon/http/relay_jobs.h"
#include "daemon/core/state_store.h"

namespace lpd::daemon::http {

/// A reply of the job API: an HTTP status and its JSON body (null: none, 204).
struct JobReply {
  int status = 200;
  json body;
  std::string location;  // Location header of a 201
};

/// RelayJobService runs the jobs of pytest-relay-run's API as lpd runs:
/// each start is a run.start of `python3 -m pytest [--collect-only] ARGS`
/// in the job's cwd, sent through the Dispatcher as the requesting peer
/// (the same gates as `lpctl run`); each stop a run.stop (SIGINT, SIGKILL
/// after lpd's grace).
/// It follows the runs through lpd's own `job` events.
/// Each user has a job table of their own, as if each ran their own
/// relay-run server: their ids, their 100 jobs, their DELETE /jobs; another
/// user's jobs are not seen at all (their runs are, in lpd's listings, by
/// lpd's access rules). A table is kept in `<state-dir>/http/jobs/<uid>.json`
/// (written anew and renamed at each change) and read back when lpd starts
/// with --http again: a restarted lpd answers for the jobs it ran, and a
/// job whose run goes on keeps its id (a second POST of it is 409).
/// relay-run's own jobs live in its server's memory only.
class RelayJobService : private RelayJobs::Watcher {
 public:
  using Respond = std::function<void(JobReply)>;
  /// Called for each job transition with the job's relay payload (text
  /// included) and its owner: WebSockets send it as {"type":"job",...}.
  using Listener = std::function<void(const json& payload, uid_t owner)>;

  /// Reads the jobs a previous lpd kept in `state_dir`/http/jobs/ and
  /// asks run.info how each running one's run stands now (it may have
  /// ended, or be gone, while lpd was down). Never throws for a missing or
  /// damaged file: it starts with the jobs it could read, and logs the rest.
  RelayJobService(Dispatcher& dispatcher, EventBus& events, const AccessPolicy& access, const std::string& state_dir);
  ~RelayJobService();
  RelayJobService(const RelayJobService&) = delete;
  RelayJobService& operator=(const RelayJobService&) = delete;

  /// POST /jobs. 201 with the job (collect-only: once collected, as relay-run).
  void create(const json& body, std::shared_ptr<Peer> peer, Respond respond);
  /// POST /jobs/{id}/actions {"action": "start"|"stop"}.
  void action(const std::string& id, const json& body, std::shared_ptr<Peer> peer, Respond respond);
  JobReply get(const std::string& id, const Peer& peer);
  JobReply list(const Peer& peer);
  JobReply remove(const std::string& id, const Peer& peer);
  JobReply remove_all(const Peer& peer);

  /// The job's relay payload {"id","state","returncode","text"}; text null
  /// before its first run, else its output (job_output_text).
  /// `max_text`: how much of the output at most (job_output_text).
  static json payload(const RelayJob& job, std::size_t max_text = kMaxJobTextBytes);
  /// GET /jobs holds at most this much output in all: each job's newest
  /// kMaxListTextBytes / jobs (at least 64 KiB), so 100 jobs make no 100 MiB reply.
  static constexpr std::size_t kMaxListTextBytes = 8 * 1024 * 1024;
  /// The bytes of one job's args: they are kept on disk (http/jobs/) and
  /// rewritten with the table; pytest's command lines are far shorter.
  static constexpr std::size_t kMaxArgsBytes = 64 * 1024;

  std::uint64_t listen(Listener listener);
  void unlisten(std::uint64_t token) { listeners_.erase(token); }
  /// Whether run `run_id` is a job's (its lpd `job` events are not sent on).
  bool is_relay_run(const std::string& run_id) const;

  const AccessPolicy& access() const { return access_; }

 private:
  /// run.start for `job`; `respond` gets the job (status `ok_status`) or the error.
  void launch(const std::string& id, bool collecting, std::shared_ptr<Peer> peer, int ok_status, Respond respond);
  void on_event(const Event& event);
  void announce(const RelayJob& job);
  /// RelayJobs::Watcher: a job of one of the tables changed.
  void changed(const RelayJob& job) override { announce(job); }
  std::string fresh_id();
  /// Reads http/jobs/<uid>.json into each user's table and settles their
  /// running jobs; a file lpd did not write is moved aside (.damaged) and logged.
  void restore();
  /// Writes `owner`'s table to http/jobs/<uid>.json (removes it when empty);
  /// a refusal (full disk) is logged: the jobs stay served from memory.
  void persist(uid_t owner);
  /// `owner`'s job table, made empty on first use.
  RelayJobs& table(uid_t owner);
  /// The job (of any user) whose latest run is `run_id`; nullptr if none.
  RelayJob* find_by_run(const std::string& run_id);
  static std::string waiting_key(uid_t owner, const std::string& id) { return std::to_string(owner) + "/" + id; }

  Dispatcher& dispatcher_;
  EventBus& events_;
  const AccessPolicy& access_;
  std::map<uid_t, RelayJobs> tables_;
  StateStore store_;
  std::uint64_t subscription_ = 0;
  std::map<std::uint64_t, Listener> listeners_;
  std::uint64_t next_listener_ = 1;
  /// A launch is under way: the run.started event it causes (which comes
  /// before run.start's reply) names the job's new run.
  bool launching_ = false;
  std::string launched_run_;  // the run the launch in progress created
  /// collect-only jobs' POST replies (by waiting_key), sent once the job is collected.
  std::multimap<std::string, Respond> waiting_;
};

}  // namespace lpd::daemon::http
