#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

/// A fresh directory under the temporary directory (TMPDIR, else /tmp),
/// removed with all it holds when the object ends (state directories and
/// journals of the store, history and token tests).
struct TempDir {
  std::string path;
  /// `prefix`: the start of the directory's name, so a leftover says which test made it.
  explicit TempDir(const std::string& prefix = "lpd-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};
