#include "daemon/host/logging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/host/systemd_integration.h"

namespace lpd::daemon {
namespace {

/// Writes each message to stderr with the syslog priority prefix ("<3>")
/// that journald reads, and no timestamp (the journal adds its own).
class JournalStderrSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    const std::string line = "<" + std::to_string(priority(msg.level)) + ">" + fmt::to_string(formatted);
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  }
  void flush_() override {}

 private:
  static int priority(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace:
      case spdlog::level::debug: return 7;
      case spdlog::level::info: return 6;
      case spdlog::level::warn: return 4;
      case spdlog::level::err: return 3;
      case spdlog::level::critical: return 2;
      default: return 6;
    }
  }
};

}  // namespace

void setup_logging(bool foreground, const std::string& state_dir, const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (foreground && stderr_is_journal()) {
    logger = std::make_shared<spdlog::logger>("lpd", std::make_shared<JournalStderrSink>());
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::from_str(level));
    spdlog::set_default_logger(std::move(logger));
    return;
  }
  if (foreground) {
    logger = std::make_shared<spdlog::logger>("lpd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    // spdlog opens (and at each rotation reopens) lpd.log with fopen("ab"),
    // which is not close-on-exec: every child would get a writable lpd.log.
    // Set the flag as soon as it is open; lpd's one thread forks nothing in
    // between.
    spdlog::file_event_handlers handlers;
    handlers.after_open = [](const spdlog::filename_t&, std::FILE* file) {
      if (!file) return;
      ::fcntl(::fileno(file), F_SETFD, FD_CLOEXEC);
      // An lpd.log an older lpd (or a laxer umask) left readable is made private.
      ::fchmod(::fileno(file), S_IRUSR | S_IWUSR);
    };
    logger = std::make_shared<spdlog::logger>(
        "lpd", std::make_shared<spdlog::sinks::rotating_file_sink_mt>(state_dir + "/lpd.log", 10 * 1024 * 1024, 3,
                                                                      /*rotate_on_open=*/false, handlers));
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%P] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace lpd::daemon
