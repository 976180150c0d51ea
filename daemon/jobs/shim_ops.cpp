#include "daemon/jobs/shim_ops.h"

#include <utility>

#include "daemon/jobs/job_service.h"
#include "daemon/jobs/shim_fields.h"

namespace lpd::daemon {

// test.start and test.finish come twice per test of every suite: their
// fields come flat (Operation::flat_fields), or, in the shim's own text, as
// a TestRecord (Operation::test_records), and what they decode is moved
// into the service, never copied.

json handle_test_start(JobService& jobs, Call& call) {
  jobs.test_started(call.peer, call.test_record ? test_start_of_record(*call.test_record) : test_start_of(call.fields));
  return json();
}

json handle_test_finish(JobService& jobs, Call& call) {
  jobs.test_finished(call.peer, call.test_record ? test_result_of_record(*call.test_record) : test_result_of(call.fields));
  return json();
}

json handle_crash_notice(JobService& jobs, Call& call) {
  jobs.crash_noticed(call.peer, crash_signal_of(call.fields));
  return json();
}

json handle_worker_down(JobService& jobs, Call& call) {
  jobs.worker_down(call.peer, worker_down_of(call.fields));
  return json();
}

json handle_worker_results(JobService& jobs, Call& call) {
  jobs.worker_results(call.peer, worker_results_of(call.fields));
  return json();
}

json handle_worker_crashed(JobService& jobs, Call& call) {
  jobs.worker_crashed(call.peer, worker_crashed_of(call.fields));
  return json();
}

json handle_collection_finish(JobService& jobs, Call& call) {
  jobs.collection_finished(call.peer, call.fields.optional_integer("count").value_or(0));
  return json();
}

json handle_traceback_attach(JobService& jobs, Call& call) {
  const bool echo = jobs.attach_traceback(call.peer, *call.sink);
  return {{"raw", true}, {"echo", echo}};
}

json handle_test_phase(JobService& jobs, Call& call) {
  jobs.phase_changed(call.peer, phase_change_of(call.fields));
  return json();
}

json handle_session_error(JobService& jobs, Call& call) {
  jobs.session_error(call.peer, session_error_of(call.fields));
  return json();
}

json handle_collection_items(JobService& jobs, Call& call) {
  jobs.collected(call.peer, collected_nodeids_of(call.fields));
  return json();
}

}  // namespace lpd::daemon
