#include "daemon/jobs/job_ops.h"

#include <csignal>
#include <string>

#include "daemon/jobs/job_service.h"

namespace lpd::daemon {

json handle_run_stop(JobService& jobs, Call& call) {
  const std::string run_id = call.fields.string("run_id");
  const auto grace = call.fields.optional_seconds("grace");
  const auto signal = call.fields.optional_integer("signal").value_or(SIGINT);
  return jobs.stop(run_id, grace, signal);
}

json handle_run_report(JobService& jobs, Call& call) {
  const std::string run_id = call.fields.string("run_id");
  const auto offset = call.fields.optional_integer("offset");
  const auto limit = call.fields.optional_integer("limit");
  return jobs.report(run_id, offset, limit);
}

json handle_run_info(JobService& jobs, Call& call) { return jobs.info(call.fields.string("run_id")); }

}  // namespace lpd::daemon
