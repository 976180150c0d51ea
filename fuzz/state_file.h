#pragma once

// Shared by the state-file fuzz targets: fuzzed bytes become a file in a
// private temporary state directory, and lpd reads it back through its own
// StateStore (bounded, no links followed), exactly as at restore.

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "daemon/core/directory_trust.h"
#include "daemon/core/state_store.h"

namespace lpd::fuzz {

/// FuzzStateDir is a state directory made once per fuzzer process under
/// $TMPDIR (or /tmp) and removed at exit. put() replaces one file's bytes.
class FuzzStateDir {
 public:
  FuzzStateDir() : store_(make_root()) {}
  ~FuzzStateDir() {
    std::error_code ignored;
    std::filesystem::remove_all(store_.root(), ignored);
  }
  FuzzStateDir(const FuzzStateDir&) = delete;
  FuzzStateDir& operator=(const FuzzStateDir&) = delete;

  const daemon::StateStore& store() const { return store_; }

  /// Writes `bytes` as the whole of `relative` (parents created). Aborts on
  /// an I/O error: the harness, not lpd, failed.
  void put(const std::string& relative, std::string_view bytes) const {
    const std::string path = store_.path(relative);
    daemon::make_directories(std::filesystem::path(path).parent_path().string(), 0700);
    // A fresh file, not O_TRUNC: ext4 flushes a truncated-and-rewritten
    // file to disk on close, which made each input wait for the disk.
    ::unlink(path.c_str());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
    ::close(fd);
  }

 private:
  static std::string make_root() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/lpd-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) std::abort();
    return pattern;
  }

  daemon::StateStore store_;
};

/// The one state directory of this fuzzer process.
inline const FuzzStateDir& state_dir() {
  static const FuzzStateDir dir;
  return dir;
}

/// Puts `data` at `relative` and reads it back as StateStore::read_json does.
inline std::optional<nlohmann::json> read_back(const std::string& relative, const std::uint8_t* data,
                                               std::size_t size) {
  state_dir().put(relative, std::string_view(reinterpret_cast<const char*>(data), size));
  return state_dir().store().read_json(relative);
}

[[noreturn]] inline void violated(const char* target, const char* what) {
  __builtin_printf("%s invariant violated: %s\n", target, what);
  std::abort();
}

/// Reads `stored` as a `Record` (its static from_json, as at restore) and
/// checks that what lpd writes of it (to_json) reads back to the same JSON;
/// aborts through violated(`target`, …) when not. Returns the record, for
/// the target's further calls; throws what Record::from_json throws.
template <class Record>
Record round_trip(const char* target, const nlohmann::json& stored) {
  Record record = Record::from_json(stored);
  const nlohmann::json once = record.to_json();
  if (Record::from_json(once).to_json() != once) violated(target, "to_json/from_json is not a round trip");
  return record;
}

}  // namespace lpd::fuzz
