#pragma once

#include <cstdint>
#include <string>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// SeqRecord writes events/seq.json, SeqReservation's "the next lpd starts
/// at X", in place: one pwrite of a fixed-size line over the same bytes.
/// A write-new-and-rename needs a free block, and on a full state directory
/// the reservation went unwritten while its seqs were used anyway: after a
/// restart they were given out again. Overwriting bytes a file already has
/// needs no new space (tmpfs, ext4, xfs); the file gets its size once, at
/// open, while there is room.
class SeqRecord {
 public:
  /// Bytes of the record: `{"next_block":N}`, spaces, a newline. JSON
  /// allows the spaces, so StateStore::read_json reads it as before.
  static constexpr std::size_t kBytes = 64;

  /// The record of `next_block`: exactly kBytes.
  static std::string format(std::uint64_t next_block);

  /// Opens (creating it 0600) the regular file at `path`, never through a
  /// link, never blocking on a FIFO, and gives it its kBytes holding
  /// `next_block` when it has another size. Returns "" or why it could not
  /// (strerror, or "not a regular file"); write() then tries again.
  std::string open(const std::string& path, std::uint64_t next_block);

  /// Records `next_block`. Returns "" once written, else why not.
  std::string write(std::uint64_t next_block);

 private:
  /// Opens path_ into fd_ and learns whether it has its size.
  std::string open_file();

  std::string path_;
  UniqueFd fd_;
  bool sized_ = false;
};

}  // namespace lpd::daemon
