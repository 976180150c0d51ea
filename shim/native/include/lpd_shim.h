/*
 * lpd_shim.h: the native side of lpd's shim, as a stable C ABI.
 *
 * A test binary (C, C++, or anything with an FFI) uses these calls to tell
 * a running lpd which test is running, to pause for a human (checkpoint,
 * pause on failure) and to report a hard crash with the test it happened in.
 * See shim/native/README.md for the one-line GoogleTest and Catch2 adapters.
 *
 * State is process-global: there is one connection per process, shared by
 * every thread (a mutex serialises it). There is no handle to pass around.
 *
 * Configuration:
 *   LPD_SOCKET    the daemon's socket. Unset (and no explicit lpd_shim_connect
 *                 path): the shim is disabled and every call returns
 *                 LPD_SHIM_DISABLED at once, costing one atomic load.
 *   LPD_RUN_ID    the run to join (set by `lpctl run`); unset: a new run.
 *   LPD_WORKER_ID optional worker id inside the run (default: controller).
 *   LPD_CHECKPOINT_MOCK  true|false|none: checkpoints return this at once
 *                 with reason "Mock", without a daemon.
 * The first call of any function below connects from the environment if
 * lpd_shim_connect* was not called before.
 *
 * Rules of the ABI:
 *   - No call throws, aborts or raises SIGPIPE. Each returns an lpd_shim_status.
 *   - Strings passed in are NUL-terminated UTF-8 and may be NULL (= "").
 *     The library copies what it keeps.
 *   - Strings handed out through `char **` are allocated by the library and
 *     owned by the caller, who frees them with lpd_shim_string_free(). They
 *     are set to NULL when there is nothing to hand out.
 *   - lpd_shim_last_error() returns a pointer into thread-local storage, valid
 *     until the next lpd_shim_* call on the same thread.
 *   - Calls block: test_started/test_finished only for one send(2); checkpoint
 *     and pause_on_failure until someone resumes the pause or it times out.
 *   - After fork() the child's shim is disabled (it shares the parent's socket).
 *
 * C89/C99 compatible; link with -llpd_shim (pkg-config lpd_shim).
 */
#ifndef LPD_SHIM_H
#define LPD_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LPD_SHIM_API __attribute__((visibility("default")))
#else
#define LPD_SHIM_API
#endif

/* Bumped only on an incompatible change of this header. */
#define LPD_SHIM_ABI_VERSION 1

/* What every call returns. */
typedef enum lpd_shim_status {
  LPD_SHIM_OK = 0,
  LPD_SHIM_DISABLED = 1,          /* no daemon configured: nothing was done */
  LPD_SHIM_UNAVAILABLE = -1,      /* configured, but lpd cannot be reached */
  LPD_SHIM_ERROR = -2,            /* lpd refused the request, or an internal error */
  LPD_SHIM_INVALID_ARGUMENT = -3  /* a bad argument (see lpd_shim_last_error) */
} lpd_shim_status;

/* A checkpoint's decision. */
typedef enum lpd_shim_result {
  LPD_SHIM_RESULT_NONE = -1,  /* resumed with --result none, timed out, or no daemon */
  LPD_SHIM_RESULT_FALSE = 0,
  LPD_SHIM_RESULT_TRUE = 1
} lpd_shim_result;

/* How a pause ended. */
typedef enum lpd_shim_outcome {
  LPD_SHIM_OUTCOME_RESUMED = 0,
  LPD_SHIM_OUTCOME_TIMED_OUT = 1,
  LPD_SHIM_OUTCOME_STALE = 2,
  LPD_SHIM_OUTCOME_MOCK = 3,     /* LPD_CHECKPOINT_MOCK answered */
  LPD_SHIM_OUTCOME_NOT_PAUSED = 4 /* the call did not pause (disabled, error) */
} lpd_shim_outcome;

/* A test's outcome for lpd_shim_test_finished. */
typedef enum lpd_shim_test_outcome {
  LPD_SHIM_PASSED = 0,
  LPD_SHIM_FAILED = 1,
  LPD_SHIM_SKIPPED = 2
} lpd_shim_test_outcome;

/* Connects using LPD_SOCKET, LPD_RUN_ID and LPD_WORKER_ID. Returns
 * LPD_SHIM_DISABLED when LPD_SOCKET is unset or empty. Calling it again
 * while connected returns LPD_SHIM_OK and does nothing. */
LPD_SHIM_API int lpd_shim_connect_from_env(void);

/* Connects to an explicit socket path. socket_path NULL or "": LPD_SOCKET,
 * else the per-user default path (/run/lpd/lpd.sock for root, else
 * $XDG_RUNTIME_DIR/lpd/lpd.sock, else /tmp/lpd-$UID/lpd.sock): calling this
 * is the opt-in. run_id NULL or "": LPD_RUN_ID if set, else a new run.
 * Replaces an earlier connection. */
LPD_SHIM_API int lpd_shim_connect(const char *socket_path, const char *run_id);

/* 1 when connected to a daemon, 0 otherwise (never connects by itself). */
LPD_SHIM_API int lpd_shim_is_connected(void);

/* Copies the run id (NUL-terminated, truncated to fit) into buf. Returns its
 * full length, or 0 when there is no run. buf may be NULL when size is 0. */
LPD_SHIM_API size_t lpd_shim_run_id(char *buf, size_t size);

/* One-way: the test `nodeid` starts now ("Suite.Test" for GoogleTest, the test
 * case name for Catch2). Also makes it the test a crash is attributed to and
 * the nodeid of checkpoints. Returns once the line is in the socket buffer. */
LPD_SHIM_API int lpd_shim_test_started(const char *nodeid);

/* One-way: the test finished. outcome: lpd_shim_test_outcome; duration in
 * seconds; message: short failure text or NULL. Clears the current test. */
LPD_SHIM_API int lpd_shim_test_finished(const char *nodeid, int outcome, double duration_seconds,
                                        const char *message);

/* Pauses the current test until `lpctl resume <id> --result true|false|none
 * [--reason TEXT]`, or for at most timeout_seconds (<= 0: 300).
 * *result gets an lpd_shim_result, *reason the resumer's text (caller frees
 * with lpd_shim_string_free), *outcome an lpd_shim_outcome; each may be NULL.
 * Without a daemon: LPD_SHIM_DISABLED, RESULT_NONE, OUTCOME_NOT_PAUSED. */
LPD_SHIM_API int lpd_shim_checkpoint(const char *task, double timeout_seconds, int *result, char **reason,
                                     int *outcome);

/* Pauses a failed test before its teardown until `lpctl resume <id>
 * [--failure-reason TEXT]` or the timeout (<= 0: 300). *failure_reason gets
 * the external failure reason, or NULL when none was given (caller frees).
 * nodeid NULL: the current test. */
LPD_SHIM_API int lpd_shim_pause_on_failure(const char *nodeid, const char *failure_text, double timeout_seconds,
                                           char **failure_reason, int *outcome);

/* A new pause id: 16 lower-case hex digits, copied into buf (NUL-terminated,
 * truncated to fit: size 17 holds it). Returns its full length (16), 0 when
 * no random source was available. With lpd_shim_pause_on_failure_as a
 * caller can print the pause's real id ("lpctl resume ID") before blocking. */
LPD_SHIM_API size_t lpd_shim_new_pause_id(char *buf, size_t size);

/* lpd_shim_pause_on_failure under the pause id the caller chose. pause_id
 * NULL or "": a new one; else 1 to 64 of letters, digits, '.', '_' and '-',
 * starting with a letter or digit (else LPD_SHIM_INVALID_ARGUMENT). */
LPD_SHIM_API int lpd_shim_pause_on_failure_as(const char *pause_id, const char *nodeid, const char *failure_text,
                                              double timeout_seconds, char **failure_reason, int *outcome);

/* Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT that send
 * {"op":"crash.notice","signal":N,"nodeid":"<current test>"} over the open
 * connection with one send(2), then chain to the handler installed before
 * (if any), then restore SIG_DFL and re-raise, so the process still dies by
 * the signal. Idempotent. Works (and stays silent) when disabled. */
LPD_SHIM_API int lpd_shim_install_crash_handler(void);

/* Sends run.end and closes the connection. Later calls are disabled until a
 * new lpd_shim_connect*. */
LPD_SHIM_API int lpd_shim_close(void);

/* Frees a string handed out by this library. NULL is fine. */
LPD_SHIM_API void lpd_shim_string_free(char *s);

/* Text of the last error on this thread ("" if none). See ownership above. */
LPD_SHIM_API const char *lpd_shim_last_error(void);

/* A static name for a status ("ok", "disabled", ...). */
LPD_SHIM_API const char *lpd_shim_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif /* LPD_SHIM_H */
