#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// StateStore is the only code that writes the state directory. A write
/// that fails throws StorageFailure (daemon/core/storage_failure.h), naming the
/// directory and the cause; callers either fail the request with it (the
/// dispatcher answers `unavailable` on a full disk) or keep the record in
/// memory and say so. Every file
/// is replaced atomically (write `<name>.new`, fsync, rename), so a reader
/// or a restarted lpd never sees half a record; journals (`.jsonl`) grow by
/// one write() per line. It persists what registries decided and never
/// decides anything itself.
class StateStore {
 public:
  /// The largest record (a .json file, or one line of a journal) lpd reads
  /// back; larger ones are treated as absent (files) or skipped (lines).
  static constexpr std::size_t kMaxRecordBytes = 16 * 1024 * 1024;

  explicit StateStore(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  /// Absolute path of a file under the state directory.
  std::string path(std::string_view relative) const;

  /// Creates missing parent directories. Throws StorageFailure on failure.
  /// `durable` fsyncs before the rename (records that must survive a power
  /// loss); without it the rename is still atomic for every reader and
  /// survives lpd itself being killed.
  void write_json(std::string_view relative, const nlohmann::json& value, bool durable = true) const;
  /// write_json for text that is not JSON (a rendered report), same rules.
  void write_text(std::string_view relative, std::string_view text, bool durable = true) const;
  /// Bytes [offset, offset + length) of a regular file under the state
  /// directory (never a link or FIFO) and the file's size; nullopt when it
  /// is missing or cannot be read.
  struct Range {
    std::string bytes;
    std::uint64_t total = 0;
  };
  std::optional<Range> read_range(std::string_view relative, std::uint64_t offset, std::size_t length) const;
  /// nullopt when the file is missing, not valid JSON, over kMaxRecordBytes,
  /// or not a regular file (a link or FIFO is never followed or opened).
  std::optional<nlohmann::json> read_json(std::string_view relative) const;
  /// Reads a .jsonl journal, skipping lines that do not parse (a torn tail).
  std::vector<nlohmann::json> read_lines(std::string_view relative) const;
  /// Hands each line of a journal to `visit` (without its newline), in
  /// order, holding one line at a time (lines over kMaxRecordBytes are
  /// skipped); a missing file, a link or a FIFO has none.
  void visit_lines(std::string_view relative, const std::function<void(std::string_view)>& visit) const;
  void remove(std::string_view relative) const;
  /// Names of the regular files in a directory under the state dir, in
  /// readdir order (empty if absent). A link is never one, whatever it
  /// points at; nor a FIFO, socket or device.
  std::vector<std::string> list(std::string_view relative_dir) const;
  /// Names of the subdirectories of a directory under the state dir, in
  /// readdir order; a link to a directory is not one.
  std::vector<std::string> list_dirs(std::string_view relative_dir) const;
  void make_dir(std::string_view relative) const;

 private:
  /// Runs `write`, turning a std::system_error into a StorageFailure about `doing`.
  template <class Write>
  void guarded(const std::string& doing, Write&& write) const;
  void write_text_unguarded(std::string_view relative, std::string_view text, bool durable) const;

  std::string root_;
};

/// Appends `line` (one line of text; the newline is added) to an absolute
/// path in a single write(), creating the file and its directories, never
/// through a link. Throws std::system_error (errno: a full disk, a link).
void append_line(const std::string& path, std::string_view line, bool durable);

}  // namespace lpd::daemon
