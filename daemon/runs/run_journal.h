#pragma once

#include <map>
#include <string>

#include "daemon/event_bus.h"
#include "daemon/state_store.h"

namespace lpd::daemon {

/// RunJournal mirrors every event that belongs to a run into
/// runs/<run_id>/events.jsonl, one line per event, for tools that read
/// pytest-live-pause's layout and so a restarted lpd can rebuild a run's
/// report. It only listens; the socket stays the control channel. A
/// journal stays open while its run is active: a suite of many small tests
/// writes two lines per test, and reopening the file each time would cost
/// more than the test.
class RunJournal {
 public:
  RunJournal(EventBus& events, const StateStore& store);
  ~RunJournal();
  RunJournal(const RunJournal&) = delete;
  RunJournal& operator=(const RunJournal&) = delete;

  /// Open journals are capped; past this the oldest is closed (reopened on need).
  static constexpr std::size_t kMaxOpen = 64;

 private:
  void append(const Event& e);
  int journal_fd(const std::string& run_id);
  void close_journal(const std::string& run_id);

  const StateStore& store_;
  std::map<std::string, int> open_;  // run_id -> O_APPEND fd
};

}  // namespace lpd::daemon
