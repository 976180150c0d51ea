// The C ABI: every entry point converts its arguments, calls the Shim and
// catches everything, so no exception ever crosses into C.
#include "lpd_shim.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "shim/native/src/crash_handler.h"
#include "shim/native/src/messages.h"
#include "shim/native/src/shim.h"

using lpd::shim::PauseOutcome;
using lpd::shim::Shim;
using lpd::shim::Status;

namespace {

std::string_view text_of(const char* s) { return s ? std::string_view(s) : std::string_view(); }

int to_c(Status status) {
  switch (status) {
    case Status::kOk: return LPD_SHIM_OK;
    case Status::kDisabled: return LPD_SHIM_DISABLED;
    case Status::kUnavailable: return LPD_SHIM_UNAVAILABLE;
    case Status::kError: return LPD_SHIM_ERROR;
    case Status::kInvalidArgument: return LPD_SHIM_INVALID_ARGUMENT;
  }
  return LPD_SHIM_ERROR;
}

int to_c(PauseOutcome::How how) {
  switch (how) {
    case PauseOutcome::How::kResumed: return LPD_SHIM_OUTCOME_RESUMED;
    case PauseOutcome::How::kTimedOut: return LPD_SHIM_OUTCOME_TIMED_OUT;
    case PauseOutcome::How::kStale: return LPD_SHIM_OUTCOME_STALE;
    case PauseOutcome::How::kMock: return LPD_SHIM_OUTCOME_MOCK;
    case PauseOutcome::How::kNotPaused: return LPD_SHIM_OUTCOME_NOT_PAUSED;
  }
  return LPD_SHIM_OUTCOME_NOT_PAUSED;
}

/// A malloc'd copy the caller frees with lpd_shim_string_free.
char* copy_out(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

/// Runs `body`, turning any exception into LPD_SHIM_ERROR with its text.
template <typename Body>
int guarded(Body&& body) noexcept {
  try {
    lpd::shim::set_last_error("");
    return body();
  } catch (const std::exception& e) {
    try {
      lpd::shim::set_last_error(e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      lpd::shim::set_last_error("unknown error");
    } catch (...) {
    }
  }
  return LPD_SHIM_ERROR;
}

const char* outcome_name(int outcome) {
  switch (outcome) {
    case LPD_SHIM_PASSED: return "passed";
    case LPD_SHIM_FAILED: return "failed";
    case LPD_SHIM_SKIPPED: return "skipped";
    default: return nullptr;
  }
}

}  // namespace

extern "C" {

int lpd_shim_connect_from_env(void) {
  return guarded([]() -> int { return to_c(Shim::instance().connect_from_env()); });
}

int lpd_shim_connect(const char* socket_path, const char* run_id) {
  return guarded([&]() -> int { return to_c(Shim::instance().connect(text_of(socket_path), text_of(run_id))); });
}

int lpd_shim_is_connected(void) {
  int connected = 0;
  guarded([&]() -> int {
    connected = Shim::instance().is_connected() ? 1 : 0;
    return LPD_SHIM_OK;
  });
  return connected;
}

size_t lpd_shim_run_id(char* buf, size_t size) {
  size_t length = 0;
  guarded([&]() -> int {
    const std::string id = Shim::instance().run_id();
    length = id.size();
    if (buf != nullptr && size > 0) {
      const size_t n = id.size() < size - 1 ? id.size() : size - 1;
      std::memcpy(buf, id.data(), n);
      buf[n] = '\0';
    }
    return LPD_SHIM_OK;
  });
  return length;
}

int lpd_shim_test_started(const char* nodeid) {
  return guarded([&]() -> int { return to_c(Shim::instance().test_started(text_of(nodeid))); });
}

int lpd_shim_test_finished(const char* nodeid, int outcome, double duration_seconds, const char* message) {
  return guarded([&]() -> int {
    const char* name = outcome_name(outcome);
    if (name == nullptr) {
      lpd::shim::set_last_error("outcome must be LPD_SHIM_PASSED, LPD_SHIM_FAILED or LPD_SHIM_SKIPPED");
      return static_cast<int>(LPD_SHIM_INVALID_ARGUMENT);
    }
    if (!(duration_seconds >= 0)) duration_seconds = 0;
    return to_c(Shim::instance().test_finished(text_of(nodeid), name, duration_seconds, text_of(message)));
  });
}

int lpd_shim_checkpoint(const char* task, double timeout_seconds, int* result, char** reason, int* outcome) {
  if (result) *result = LPD_SHIM_RESULT_NONE;
  if (reason) *reason = nullptr;
  if (outcome) *outcome = LPD_SHIM_OUTCOME_NOT_PAUSED;
  return guarded([&]() -> int {
    PauseOutcome out;
    const Status status = Shim::instance().checkpoint(text_of(task), timeout_seconds, out);
    if (result && out.result) *result = *out.result ? LPD_SHIM_RESULT_TRUE : LPD_SHIM_RESULT_FALSE;
    if (outcome) *outcome = to_c(out.how);
    if (reason && out.how != PauseOutcome::How::kNotPaused) *reason = copy_out(out.reason);
    return to_c(status);
  });
}

int lpd_shim_pause_on_failure(const char* nodeid, const char* failure_text, double timeout_seconds,
                              char** failure_reason, int* outcome) {
  return lpd_shim_pause_on_failure_as(nullptr, nodeid, failure_text, timeout_seconds, failure_reason, outcome);
}

size_t lpd_shim_new_pause_id(char* buf, size_t size) {
  try {
    const std::string id = lpd::shim::messages::new_pause_id();
    if (buf != nullptr && size > 0) {
      const size_t n = std::min(size - 1, id.size());
      std::memcpy(buf, id.data(), n);
      buf[n] = '\0';
    }
    return id.size();
  } catch (...) {  // std::random_device may throw: no id
    if (buf != nullptr && size > 0) buf[0] = '\0';
    return 0;
  }
}

int lpd_shim_pause_on_failure_as(const char* pause_id, const char* nodeid, const char* failure_text,
                                 double timeout_seconds, char** failure_reason, int* outcome) {
  if (failure_reason) *failure_reason = nullptr;
  if (outcome) *outcome = LPD_SHIM_OUTCOME_NOT_PAUSED;
  return guarded([&]() -> int {
    const std::string_view chosen = text_of(pause_id);
    if (!chosen.empty() && !lpd::shim::messages::valid_pause_id(chosen)) {
      lpd::shim::set_last_error("pause_id must be 1 to 64 of letters, digits, '.', '_', '-', starting with a "
                                "letter or digit");
      return static_cast<int>(LPD_SHIM_INVALID_ARGUMENT);
    }
    PauseOutcome out;
    std::optional<std::string_view> id;
    if (nodeid) id = nodeid;
    const Status status =
        Shim::instance().pause_on_failure(id, text_of(failure_text), timeout_seconds, out, std::string(chosen));
    if (outcome) *outcome = to_c(out.how);
    if (failure_reason && out.failure_reason) *failure_reason = copy_out(*out.failure_reason);
    return to_c(status);
  });
}

int lpd_shim_install_crash_handler(void) {
  return guarded([]() -> int {
    if (!lpd::shim::crash::install()) {
      lpd::shim::set_last_error("sigaction failed");
      return LPD_SHIM_ERROR;
    }
    return LPD_SHIM_OK;
  });
}

int lpd_shim_close(void) {
  return guarded([]() -> int { return to_c(Shim::instance().close()); });
}

void lpd_shim_string_free(char* s) { std::free(s); }

const char* lpd_shim_last_error(void) { return lpd::shim::last_error().c_str(); }

const char* lpd_shim_status_name(int status) {
  switch (status) {
    case LPD_SHIM_OK: return "ok";
    case LPD_SHIM_DISABLED: return "disabled";
    case LPD_SHIM_UNAVAILABLE: return "unavailable";
    case LPD_SHIM_ERROR: return "error";
    case LPD_SHIM_INVALID_ARGUMENT: return "invalid_argument";
    default: return "unknown";
  }
}

}  // extern "C"
