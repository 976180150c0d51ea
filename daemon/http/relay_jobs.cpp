// pytest-relay-run's jobs, as plain rules (no I/O).
#include "daemon/http/relay_jobs.h"

#include <algorithm>

namespace lpd::daemon::http {

std::string_view to_string(RelayState state) {
  switch (state) {
    case RelayState::kCreated: return "created";
    case RelayState::kCollected: return "collected";
    case RelayState::kInProgress: return "in-progress";
    case RelayState::kTerminating: return "terminating";
    case RelayState::kDone: return "done";
  }
  return "created";
}

std::vector<std::string> shell_split(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (is_space(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) throw RelayError(400, "argument \"" + std::string(text) + "\": no escaped character");
      word.push_back(text[++i]);
      in_word = true;
    } else if (c == '\'') {
      const auto end = text.find('\'', i + 1);
      if (end == std::string_view::npos)
        throw RelayError(400, "argument \"" + std::string(text) + "\": no closing quotation");
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
      in_word = true;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (;; ++j) {
        if (j >= text.size()) throw RelayError(400, "argument \"" + std::string(text) + "\": no closing quotation");
        if (text[j] == '"') break;
        // In double quotes a backslash escapes only these (as sh, and shlex).
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`' ||
             text[j + 1] == '\n'))
          ++j;
        word.push_back(text[j]);
      }
      i = j;
      in_word = true;
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

RelayArgs parse_relay_args(const std::vector<std::string>& given, const std::string& id) {
  RelayArgs parsed;
  for (const auto& element : given)
    for (auto& word : shell_split(element))
      if (word != "--collect-only") parsed.args.push_back(std::move(word));
  // `--session-id X` is pytest-relay's option (its plugin takes
  // it); lpd's pytest has no such plugin and would stop at "unrecognized
  // arguments": it names the job and is taken out, as --collect-only is.
  std::string session_id;
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < parsed.args.size(); ++i) {
    const std::string& arg = parsed.args[i];
    if (arg.rfind("--session-id=", 0) == 0) {
      if (session_id.empty()) session_id = arg.substr(13);
      continue;
    }
    if (arg == "--session-id") {
      if (i + 1 < parsed.args.size() && session_id.empty()) session_id = parsed.args[i + 1];
      ++i;
      continue;
    }
    kept.push_back(arg);
  }
  parsed.args = std::move(kept);
  if (!id.empty() && !session_id.empty() && id != session_id)
    throw RelayError(400, "The provided job ID '" + id + "' does not match the session ID '" + session_id +
                              "' provided in the job's argument list.");
  parsed.id = id.empty() ? session_id : id;
  return parsed;
}

std::optional<int> relay_returncode(std::optional<int> returncode, std::optional<int> signal) {
  if (returncode && signal && *signal > 0 && *returncode == 128 + *signal) return -*signal;
  return returncode;
}

bool RelayJobs::valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(id.front())) return false;
  for (char c : id)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

RelayJob& RelayJobs::create(std::string id, const std::string& fresh_id, uid_t owner, std::vector<std::string> args,
                            std::string cwd, bool collect_only) {
  if (id.empty()) id = fresh_id;
  if (!valid_id(id))
    throw RelayError(400, "job id \"" + id + "\" must be 1 to " + std::to_string(kMaxIdBytes) +
                              " letters, digits, '.', '_' or '-', starting with a letter or digit");
  if (jobs_.count(id)) throw RelayError(409, "Job with ID " + id + " already exists");
  if (args.size() > kMaxArgs)
    throw RelayError(400, "a job takes at most " + std::to_string(kMaxArgs) + " arguments");
  if (jobs_.size() >= kMaxJobs) {
    // relay-run evicts its oldest job; lpd the oldest that is not running.
    const RelayJob* oldest = nullptr;
    for (const auto& [key, job] : jobs_)
      if (!job.running && (!oldest || job.order < oldest->order)) oldest = &job;
    if (!oldest)
      throw RelayError(409, "all " + std::to_string(kMaxJobs) +
                                " jobs lpd keeps are running: stop one (or wait) before creating another");
    remove(oldest->id);
  }
  RelayJob job;
  job.id = id;
  job.owner = owner;
  job.args = std::move(args);
  job.cwd = std::move(cwd);
  job.collect_only = collect_only;
  job.order = next_order_++;
  RelayJob& made = jobs_.emplace(id, std::move(job)).first->second;
  if (!collect_only) announce(made);
  return made;
}

void RelayJobs::check_start(const RelayJob& job) const {
  if (job.running)
    throw RelayError(409, "job " + job.id + " is " + std::string(to_string(job.state)) + ": it is running already");
  if (job.state != RelayState::kCreated && job.state != RelayState::kCollected)
    throw RelayError(409, "job " + job.id + " is " + std::string(to_string(job.state)) +
                              ": only a created or collected job can be started; create a new job to run again");
}

void RelayJobs::launched(RelayJob& job, std::string run_id, std::string log, bool collecting) {
  if (!job.run_id.empty()) by_run_.erase(job.run_id);
  job.run_id = std::move(run_id);
  job.log = std::move(log);
  by_run_[job.run_id] = job.id;
  job.running = true;
  job.collecting = collecting;
  job.returncode.reset();
  if (!collecting) {
    job.state = RelayState::kInProgress;
    announce(job);
  }
}

void RelayJobs::launch_failed(const std::string& id, const std::string& why) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  // A job that ran before (a collected one started) keeps what it had.
  if (!it->second.run_id.empty()) return;
  RelayJob& job = it->second;
  job.failure = why;
  job.state = RelayState::kDone;
  if (!job.collect_only) announce(job);  // its `created` was announced
  jobs_.erase(it);
}

bool RelayJobs::run_changed(const std::string& run_id, std::string_view lpd_state, std::optional<int> returncode) {
  RelayJob* job = find_by_run(run_id);
  if (!job || !job->running) return job != nullptr;
  if (lpd_state == "terminating" && job->state != RelayState::kTerminating) {
    job->state = RelayState::kTerminating;
    announce(*job);
  } else if (lpd_state == "done") {
    job->running = false;
    job->returncode = returncode;
    job->state = job->collecting ? RelayState::kCollected : RelayState::kDone;
    job->collecting = false;
    announce(*job);
  }
  return true;
}

bool RelayJobs::run_lost(const std::string& run_id, const std::string& why) {
  RelayJob* job = find_by_run(run_id);
  if (!job || !job->running) return job != nullptr;
  job->running = false;
  job->collecting = false;
  job->returncode.reset();
  job->failure = why;
  job->state = RelayState::kDone;
  announce(*job);
  return true;
}

void RelayJobs::restore(std::vector<RelayJob> jobs) {
  jobs_.clear();
  by_run_.clear();
  for (auto& job : jobs) {
    next_order_ = std::max(next_order_, job.order + 1);
    if (!job.run_id.empty()) by_run_[job.run_id] = job.id;
    const std::string id = job.id;
    jobs_.insert_or_assign(id, std::move(job));
  }
}

RelayJob* RelayJobs::find(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

RelayJob& RelayJobs::get(const std::string& id) {
  if (RelayJob* job = find(id)) return *job;
  throw RelayError(404, "Job with ID '" + id + "' not found");
}

RelayJob* RelayJobs::find_by_run(const std::string& run_id) {
  auto it = by_run_.find(run_id);
  return it == by_run_.end() ? nullptr : find(it->second);
}

const RelayJob* RelayJobs::find_by_run(const std::string& run_id) const {
  auto it = by_run_.find(run_id);
  if (it == by_run_.end()) return nullptr;
  auto job = jobs_.find(it->second);
  return job == jobs_.end() ? nullptr : &job->second;
}

std::vector<const RelayJob*> RelayJobs::all() const {
  std::vector<const RelayJob*> list;
  for (const auto& [key, job] : jobs_) list.push_back(&job);
  std::sort(list.begin(), list.end(), [](const RelayJob* a, const RelayJob* b) { return a->order < b->order; });
  return list;
}

void RelayJobs::remove(const std::string& id) {
  RelayJob& job = get(id);
  if (job.running)
    throw RelayError(409, "job " + id + " is " + std::string(to_string(job.state)) +
                              ": stop it (POST /jobs/" + id + "/actions {\"action\": \"stop\"}) and delete it once done");
  if (!job.run_id.empty()) by_run_.erase(job.run_id);
  jobs_.erase(id);
}

void RelayJobs::remove_all() {
  std::string running;
  for (const auto& [key, job] : jobs_)
    if (job.running) running += (running.empty() ? "" : ", ") + key;
  if (!running.empty())
    throw RelayError(409, "jobs still running, nothing deleted: " + running + "; stop them first");
  jobs_.clear();
  by_run_.clear();
}

}  // namespace lpd::daemon::http
