#include "daemon/core/paging.h"

#include <algorithm>
#include <string>

#include "protocol/error.h"

namespace lpd::daemon {

std::size_t PageLimits::items(std::optional<std::int64_t> requested) {
  if (!requested) return kDefaultItems;
  if (*requested < 1)
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "field \"limit\" must be 1 or more");
  return static_cast<std::size_t>(std::min<std::int64_t>(*requested, kMaxItems));
}

}  // namespace lpd::daemon
