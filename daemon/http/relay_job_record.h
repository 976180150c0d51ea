// A job of the HTTP job API as lpd keeps it on disk (<state-dir>/http/jobs.json),
// so a restarted lpd still answers GET /jobs/{id} for the jobs it ran.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/http/relay_jobs.h"

namespace lpd::daemon::http {

/// The job's record: everything RelayJobs keeps but its text, which is
/// read from the run's log when asked for. {"id","owner","args","cwd",
/// "collect_only","state","returncode","run_id","log","running",
/// "collecting","failure","order"}.
nlohmann::json relay_job_record(const RelayJob& job);

/// The job a record describes, or nullopt when the record is not one lpd
/// writes: a field missing or of the wrong type, an id RelayJobs::valid_id
/// refuses, more than RelayJobs::kMaxArgs arguments, an unknown state, a
/// log or cwd that is not an absolute path. The state directory is lpd's,
/// but a record is still checked before it is trusted.
std::optional<RelayJob> relay_job_from_record(const nlohmann::json& record);

/// The whole table's file: {"jobs": [record, ...]} oldest first.
nlohmann::json relay_jobs_file(const std::vector<const RelayJob*>& jobs);

/// The jobs of a table's file, oldest first, at most RelayJobs::kMaxJobs
/// (the newest), each id once (the newest record of it); records that
/// relay_job_from_record refuses are left out and counted in `skipped`.
std::vector<RelayJob> relay_jobs_from_file(const nlohmann::json& file, std::size_t& skipped);

}  // namespace lpd::daemon::http
