#include "daemon/crashes/crash_retry.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/core/backoff.h"

namespace lpd::daemon {

std::chrono::milliseconds crash_retry_delay(unsigned failures) {
  return doubling_delay(failures, std::chrono::milliseconds(1000), std::chrono::milliseconds(30000));
}

CrashRetry::CrashRetry(boost::asio::io_context& io, CrashStore& crashes) : io_(io), crashes_(crashes), timer_(io) {}

bool CrashRetry::sync_later(std::function<void()> sync) {
  boost::asio::post(io_, std::move(sync));
  return true;
}

void CrashRetry::flushed(bool written) {
  if (written) {
    failures_ = 0;
    if (armed_) timer_.cancel();
    armed_ = false;
    return;
  }
  ++failures_;
  arm();
}

void CrashRetry::arm() {
  if (armed_) return;  // a try is already planned; a failed append does not push it later
  armed_ = true;
  timer_.expires_after(crash_retry_delay(failures_));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    armed_ = false;
    if (crashes_.unwritten() == 0) {
      failures_ = 0;
      return;
    }
    crashes_.flush();  // calls flushed(): success stands down, failure arms the next try
  });
}

void CrashRetry::last_try() {
  if (armed_) timer_.cancel();
  armed_ = false;
  crashes_.sync_now();  // the event loop that would have run it is stopping
  if (crashes_.unwritten() == 0 || crashes_.flush()) return;
  const auto lost = crashes_.unwritten_records();
  if (lost.empty()) {
    // Only a compaction waits: the journal on disk is whole, it still has
    // what was dropped from memory (a flaky mark, pruned runs' records).
    spdlog::warn("lpd stops before it could rewrite {} ({})", CrashStore::kJournal, crashes_.cause());
    return;
  }
  spdlog::error("lpd stops with {} crash record(s) it could not write ({}); they are lost with it:", lost.size(),
                crashes_.cause());
  for (const Crash* crash : lost)
    spdlog::error("  crash {}: run {} test {} pid {}: {}", crash->crash_id, crash->run_id, crash->nodeid, crash->pid,
                  crash->reason);
}

}  // namespace lpd::daemon
