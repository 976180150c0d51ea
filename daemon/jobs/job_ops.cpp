#include "daemon/jobs/job_ops.h"

#include <csignal>
#include <optional>
#include <string>

#include "daemon/core/bounded_field.h"
#include "daemon/jobs/job_service.h"
#include "daemon/jobs/runner_adapter.h"
#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

JobSpec job_spec_of(const protocol::Fields& f, const json& body) {
  JobSpec spec;
  spec.argv = f.string_list("argv");
  if (spec.argv.empty()) throw Error(ErrorCode::kBadRequest, "field \"argv\" must name a command");
  spec.cwd = f.optional_string("cwd").value_or("/");
  if (spec.cwd.empty() || spec.cwd.front() != '/') throw Error(ErrorCode::kBadRequest, "field \"cwd\" must be absolute");
  check_cwd_length(spec.cwd);
  for (auto& [k, v] : f.string_map("env")) spec.env.push_back(k + "=" + v);
  spec.name = f.optional_string("name").value_or("");
  // The run id is NAME-YYYYMMDD-HHMMSS-xxxxxx, a directory name of at most
  // 64 characters: a longer name was cut from the front, which could leave
  // an id starting with '-' that no restart would take back (the run lost).
  if (!spec.name.empty()) {
    constexpr std::size_t kMaxName = 64 - 1 - 22;
    if (spec.name.size() > kMaxName)
      throw Error(ErrorCode::kBadRequest, "run name \"" + spec.name + "\" is " + std::to_string(spec.name.size()) +
                                              " characters; at most " + std::to_string(kMaxName) +
                                              " (the run id, NAME-YYYYMMDD-HHMMSS-xxxxxx, has at most 64)");
    if (!is_safe_id(spec.name))
      throw Error(ErrorCode::kBadRequest, "run name \"" + spec.name + "\" must start with a letter or digit and hold "
                                          "only letters, digits, '.', '_' and '-'");
  }
  spec.retry_crashed = static_cast<int>(f.optional_integer("retry_crashed").value_or(0));
  if (spec.retry_crashed < 0 || spec.retry_crashed > 100)
    throw Error(ErrorCode::kBadRequest, "field \"retry_crashed\" must be between 0 and 100");
  spec.rerun_crashed = static_cast<int>(f.optional_integer("rerun_crashed").value_or(0));
  if (spec.rerun_crashed < 0 || spec.rerun_crashed > 100)
    throw Error(ErrorCode::kBadRequest, "field \"rerun_crashed\" must be between 0 and 100");
  spec.fail_on_flaky = f.optional_boolean("fail_on_flaky").value_or(false);
  // -- "terminal": {"columns": C, "rows": R} runs the
  // command on a pseudo-terminal of that size (lpd-monitor --pty).
  if (const auto t = body.find("terminal"); t != body.end() && !t->is_null()) {
    const auto dimension = [&](const char* name) {
      const auto v = t->is_object() ? t->find(name) : t->end();
      if (v == t->end() || !v->is_number_integer() || v->get<std::int64_t>() < 1 || v->get<std::int64_t>() > 10000)
        throw Error(ErrorCode::kBadRequest,
                    "field \"terminal\" must be {\"columns\": N, \"rows\": M}, each between 1 and 10000");
      return static_cast<int>(v->get<std::int64_t>());
    };
    spec.terminal_columns = dimension("columns");
    spec.terminal_rows = dimension("rows");
  }
  // A terminal shows stdout and stderr as one stream: there is nothing to keep apart.
  spec.separate_stderr = f.optional_boolean("separate_stderr").value_or(false) && spec.terminal_columns == 0;
  std::optional<Runner> named_runner;
  if (auto name = f.optional_string("runner"); name && !name->empty()) {
    named_runner = runner_from_name(*name);
    if (!named_runner)
      throw Error(ErrorCode::kBadRequest, "unknown runner \"" + *name + "\"; lpd knows " +
                                              std::string(supported_runners_text()));
  }
  spec.runner = detect_runner(spec.argv, named_runner);
  // Refused now, not after the first crash: leaving tests out of a command
  // lpd cannot steer would re-run the same crash (or break its command line).
  if ((spec.retry_crashed > 0 || spec.rerun_crashed > 0) && spec.runner == Runner::kNone)
    throw Error(ErrorCode::kBadRequest,
                "--retry-crashed and --rerun-crashed need a test runner lpd can leave tests out of, and \"" +
                    spec.argv.front() + "\" is none it recognises. Supported: " +
                    std::string(supported_runners_text()) + ". Name it with --runner.");
  spec.junit_path = f.optional_string("junit").value_or("");
  spec.crash_log_path = f.optional_string("crash_log").value_or("");
  spec.pause_on_failure = f.optional_boolean("pause_on_failure").value_or(false);
  // Files written for the caller: where, checked here; whether they may
  // write there is the service's (as them).
  for (const auto& path : {spec.junit_path, spec.crash_log_path})
    if (!path.empty() && path.front() != '/')
      throw Error(ErrorCode::kBadRequest, "report path \"" + path + "\" must be absolute");
  return spec;
}

json handle_run_start(JobService& jobs, Call& call) { return jobs.start(job_spec_of(call.fields, call.body), call.peer); }

json handle_run_attach(JobService& jobs, Call& call) {
  const std::string run_id = call.fields.string("run_id");
  JobService::AttachFrom from;
  from.offset = call.fields.optional_integer("offset").value_or(0);
  if (from.offset < 0) throw Error(ErrorCode::kBadRequest, "field \"offset\" must not be negative");
  from.stderr_offset = call.fields.optional_integer("stderr_offset").value_or(0);
  if (from.stderr_offset < 0) throw Error(ErrorCode::kBadRequest, "field \"stderr_offset\" must not be negative");
  return jobs.attach(run_id, from, call.sink, call.peer.session_id, [&call] { return call.defer(); });
}

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
