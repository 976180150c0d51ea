/* A C program (not C++) that uses only lpd_shim.h: it reports one test and
 * passes a checkpoint. Exit status: 0 when resumed with --result true, 1
 * when resumed otherwise, 2 on an error, 3 when no daemon is configured. */
#include <stdio.h>

#include "lpd_shim.h"

int main(void) {
  int status;
  int result = LPD_SHIM_RESULT_NONE;
  int outcome = LPD_SHIM_OUTCOME_NOT_PAUSED;
  char *reason = NULL;
  char run_id[128];

  status = lpd_shim_connect_from_env();
  if (status == LPD_SHIM_DISABLED) {
    printf("C-SAMPLE no daemon configured\n");
    return 3;
  }
  if (status != LPD_SHIM_OK) {
    printf("C-SAMPLE connect failed: %s (%s)\n", lpd_shim_status_name(status), lpd_shim_last_error());
    return 2;
  }
  lpd_shim_install_crash_handler();
  lpd_shim_run_id(run_id, sizeof run_id);
  printf("C-SAMPLE run %s\n", run_id);
  fflush(stdout);

  lpd_shim_test_started("c_sample.checkpoint");
  status = lpd_shim_checkpoint("approve from C", 120.0, &result, &reason, &outcome);
  printf("C-CHECKPOINT status=%s result=%d outcome=%d reason='%s'\n", lpd_shim_status_name(status), result, outcome,
         reason ? reason : "");
  lpd_shim_test_finished("c_sample.checkpoint", result == LPD_SHIM_RESULT_TRUE ? LPD_SHIM_PASSED : LPD_SHIM_FAILED,
                         0.0, NULL);
  lpd_shim_string_free(reason);
  lpd_shim_close();
  if (status != LPD_SHIM_OK) return 2;
  return result == LPD_SHIM_RESULT_TRUE ? 0 : 1;
}
