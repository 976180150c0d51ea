#include "daemon/core/unique_fd.h"

#include <sys/resource.h>
#include <sys/syscall.h>

namespace lpd::daemon {
namespace {

void close_from_to(unsigned first, unsigned last) {
  if (first > last) return;
  if (::syscall(SYS_close_range, first, last, 0U) == 0) return;
  // Old kernels: close what the limit allows, one call each.
  rlimit limit{};
  unsigned top = last;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur - 1 < top)
    top = static_cast<unsigned>(limit.rlim_cur - 1);
  for (unsigned fd = first; fd <= top; ++fd) ::close(static_cast<int>(fd));
}

}  // namespace

void close_inherited_descriptors(int keep) {
  if (keep < 3) {
    close_from_to(3, ~0U);
    return;
  }
  close_from_to(3, static_cast<unsigned>(keep) - 1);
  close_from_to(static_cast<unsigned>(keep) + 1, ~0U);
}

}  // namespace lpd::daemon
