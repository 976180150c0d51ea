#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lpd::daemon {

/// Pattern is the readiness regex of a supervised process, in Perl syntax
/// (what Python `re` users write: \d, \s, (?P<name>...), lookarounds).
/// It searches anywhere in a line, like `re.search`. Python's own group
/// spellings, (?P<name>...) and (?P=name), are translated to Perl's.
/// Pattern and lines are Unicode text, as Python 3's `re` on str sees them:
/// `.` is one character and `\w` a Unicode word character, so `pr.t` and
/// `\w+` match "prêt" (Boost.Regex's ICU mode, boost::u32regex). Python's
/// flags come as inline flags: (?i), (?m), (?s), (?x).
/// Rewrites Python-only syntax to what Boost's Perl mode understands,
/// leaving escapes and character classes alone.
std::string python_to_perl_syntax(const std::string& source);

/// the work a pattern may spend searching one helper's log,
/// counted in the regex machine's states (Boost.Regex's unit, about 10^8 a
/// second here). Each line earns a little credit, more for each byte; a
/// search may spend what is banked, at most kMax. Ordinary patterns spend
/// a few states a byte and never run short; a catastrophic one
/// (`(.*a){25}!x`) runs out and is given up. So whatever a helper prints,
/// its pattern costs the daemon at most about kMax states plus kPerByte a
/// byte of log (tens of milliseconds per 64 KiB read), not seconds per
/// line. A pattern quadratic in a line of thousands of characters
/// (`\d+.*ready` over a 10,000-character line) is refused: anchor it.
class SearchCredit {
 public:
  static constexpr std::uint64_t kMax = 1'000'000;
  // Enough that `\w+.*ready to accept` over a log of 129-character lines
  // (about 2,400 states a line) never runs short: with 8 a byte it did
  // after 200 lines. Bounds a hostile pattern to about 40 ms per 64 KiB read.
  static constexpr std::uint64_t kPerLine = 256;
  static constexpr std::uint64_t kPerByte = 64;
  /// Credits a line of `line_bytes` and returns what its search may spend.
  std::uint64_t allowance_for(std::size_t line_bytes);
  /// Takes off what a search spent.
  void spend(std::uint64_t states);
  std::uint64_t banked() const { return credit_; }

 private:
  std::uint64_t credit_ = kMax;
};

/// longer patterns are refused at compile.
constexpr std::size_t kMaxPatternBytes = 4096;

/// Thrown by Pattern::matches/search when a line's search exceeds its
/// allowance (SearchCredit) or Boost's recursion limit; what() names the
/// pattern.
class PatternTooComplex : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Pattern {
 public:
  /// Throws protocol::Error(kBadRequest) with Boost's explanation and the
  /// position of the mistake, so a bad regex is refused before any spawn.
  static Pattern compile(const std::string& source);

  /// `line` is decoded as UTF-8; a byte that is not part of valid UTF-8
  /// reads as U+FFFD (as Python's errors="replace"), so any line can be
  /// searched. Throws PatternTooComplex when the search runs past a fresh
  /// SearchCredit.
  bool matches(std::string_view line) const;
  /// the same, spending from `credit` (one per helper's log);
  /// throws PatternTooComplex when the search runs past what it holds.
  bool search(std::string_view line, SearchCredit& credit) const;
  const std::string& source() const { return source_; }

 private:
  struct Compiled;
  Pattern(std::string source, std::shared_ptr<const Compiled> compiled)
      : source_(std::move(source)), compiled_(std::move(compiled)) {}
  std::string source_;
  std::shared_ptr<const Compiled> compiled_;  // immutable: copies share it
};

/// Decodes UTF-8 to code points; each byte of an invalid or truncated
/// sequence, an overlong form, a surrogate or a value above U+10FFFF
/// becomes U+FFFD.
std::u32string decode_utf8_lossy(std::string_view bytes);

}  // namespace lpd::daemon
