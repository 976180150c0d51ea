#pragma once

#include <memory>
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

class Pattern {
 public:
  /// Throws protocol::Error(kBadRequest) with Boost's explanation and the
  /// position of the mistake, so a bad regex is refused before any spawn.
  static Pattern compile(const std::string& source);

  /// `line` is decoded as UTF-8; a byte that is not part of valid UTF-8
  /// reads as U+FFFD (as Python's errors="replace"), so any line can be
  /// searched and none throws.
  bool matches(std::string_view line) const;
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
