#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <stdlib.h>

#include <string>

#include <catch2/catch.hpp>

/// A log in a fresh temporary directory, opened O_APPEND as a helper's or a
/// run's command writes its own (log cap and run output cap tests).
struct TempAppendLog {
  std::string dir;
  std::string path;
  int writer = -1;
  /// `file_name`: the log's name inside the directory (h.1.log, output.log).
  explicit TempAppendLog(const std::string& file_name) {
    char pattern[] = "/tmp/lpd-append-log-XXXXXX";
    dir = ::mkdtemp(pattern);
    path = dir + "/" + file_name;
    writer = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  ~TempAppendLog() {
    ::close(writer);
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  TempAppendLog(const TempAppendLog&) = delete;
  TempAppendLog& operator=(const TempAppendLog&) = delete;
  /// Appends lines `from` .. `from + count - 1`, each "line N xxx…" (about 100 bytes).
  void write_lines(int from, int count) {
    std::string text;
    for (int i = from; i < from + count; ++i) text += "line " + std::to_string(i) + " " + std::string(90, 'x') + "\n";
    REQUIRE(::write(writer, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  }
};
