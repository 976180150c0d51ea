#include "daemon/logging.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace lpd::daemon {

bool is_log_level(const std::string& level) {
  return spdlog::level::from_str(level) != spdlog::level::off || level == "off";
}

void setup_logging(bool foreground, const std::string& state_dir, const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (foreground) {
    logger = std::make_shared<spdlog::logger>("lpd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "lpd", std::make_shared<spdlog::sinks::rotating_file_sink_mt>(state_dir + "/lpd.log", 10 * 1024 * 1024, 3));
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%P] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace lpd::daemon
