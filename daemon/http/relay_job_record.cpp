// A job of the HTTP job API as lpd keeps it on disk.
#include "daemon/http/relay_job_record.h"

#include <algorithm>
#include <map>

#include "daemon/core/record_field.h"

namespace lpd::daemon::http {
namespace {

using nlohmann::json;

constexpr RelayState kRelayStates[] = {RelayState::kCreated, RelayState::kCollected, RelayState::kInProgress,
                                  RelayState::kTerminating, RelayState::kDone};

std::optional<RelayState> state_named(std::string_view name) {
  for (RelayState state : kRelayStates)
    if (to_string(state) == name) return state;
  return std::nullopt;
}

/// Field `key` as T when present and of T's type; nullopt otherwise.
template <typename T>
std::optional<T> required(const json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end()) return std::nullopt;
  return record_field_detail::convert<T>(*it);
}

bool absolute_or_empty(const std::string& path) { return path.empty() || path.front() == '/'; }

}  // namespace

json relay_job_record(const RelayJob& job) {
  return {{"id", job.id},
          {"owner", job.owner},
          {"args", job.args},
          {"cwd", job.cwd},
          {"collect_only", job.collect_only},
          {"state", std::string(to_string(job.state))},
          {"returncode", job.returncode ? json(*job.returncode) : json(nullptr)},
          {"run_id", job.run_id},
          {"log", job.log},
          {"running", job.running},
          {"collecting", job.collecting},
          {"failure", job.failure},
          {"order", job.order}};
}

std::optional<RelayJob> relay_job_from_record(const json& record) {
  if (!record.is_object()) return std::nullopt;
  RelayJob job;
  const auto id = required<std::string>(record, "id");
  const auto owner = required<uid_t>(record, "owner");
  const auto args = required<std::vector<std::string>>(record, "args");
  const auto cwd = required<std::string>(record, "cwd");
  const auto collect_only = required<bool>(record, "collect_only");
  const auto state_name = required<std::string>(record, "state");
  const auto run_id = required<std::string>(record, "run_id");
  const auto log = required<std::string>(record, "log");
  const auto running = required<bool>(record, "running");
  const auto collecting = required<bool>(record, "collecting");
  const auto failure = required<std::string>(record, "failure");
  const auto order = required<std::uint64_t>(record, "order");
  if (!id || !owner || !args || !cwd || !collect_only || !state_name || !run_id || !log || !running || !collecting ||
      !failure || !order)
    return std::nullopt;
  const auto state = state_named(*state_name);
  if (!state || !RelayJobs::valid_id(*id) || args->size() > RelayJobs::kMaxArgs || cwd->empty() ||
      !absolute_or_empty(*cwd) || !absolute_or_empty(*log))
    return std::nullopt;
  // A run id is a path segment of runs/: the same characters as a job id.
  if (!run_id->empty() && !RelayJobs::valid_id(*run_id)) return std::nullopt;
  // Only a job with a run can be running.
  if (*running && run_id->empty()) return std::nullopt;
  const auto rc = record.find("returncode");
  if (rc != record.end() && !rc->is_null()) {
    const auto value = required<int>(record, "returncode");
    if (!value) return std::nullopt;
    job.returncode = *value;
  }
  job.id = *id;
  job.owner = *owner;
  job.args = *args;
  job.cwd = *cwd;
  job.collect_only = *collect_only;
  job.state = *state;
  job.run_id = *run_id;
  job.log = *log;
  job.running = *running;
  job.collecting = *collecting && *running;
  job.failure = *failure;
  job.order = *order;
  return job;
}

json relay_jobs_file(const std::vector<const RelayJob*>& jobs) {
  json records = json::array();
  for (const RelayJob* job : jobs) records.push_back(relay_job_record(*job));
  return {{"jobs", std::move(records)}};
}

std::vector<RelayJob> relay_jobs_from_file(const json& file, std::size_t& skipped) {
  skipped = 0;
  std::map<std::string, RelayJob> newest;  // by id
  const auto records = file.is_object() ? file.find("jobs") : file.end();
  if (records == file.end() || !records->is_array()) return {};
  for (const json& record : *records) {
    auto job = relay_job_from_record(record);
    if (!job) {
      ++skipped;
      continue;
    }
    auto [it, fresh] = newest.try_emplace(job->id, *job);
    if (!fresh) {
      ++skipped;
      if (job->order > it->second.order) it->second = std::move(*job);
    }
  }
  std::vector<RelayJob> jobs;
  for (auto& [id, job] : newest) jobs.push_back(std::move(job));
  std::sort(jobs.begin(), jobs.end(), [](const RelayJob& a, const RelayJob& b) { return a.order < b.order; });
  if (jobs.size() > RelayJobs::kMaxJobs) {
    skipped += jobs.size() - RelayJobs::kMaxJobs;
    jobs.erase(jobs.begin(), jobs.end() - RelayJobs::kMaxJobs);
  }
  return jobs;
}

}  // namespace lpd::daemon::http
