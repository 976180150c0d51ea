#pragma once

#include <string>
#include <string_view>

#include <boost/regex.hpp>

namespace lpd::daemon {

/// Pattern is the readiness regex of a supervised process, in Perl syntax
/// (what Python `re` users write: \d, \s, (?P<name>...), lookarounds).
/// It searches anywhere in a line, like `re.search`. Python's own group
/// spellings, (?P<name>...) and (?P=name), are translated to Perl's.
/// Rewrites Python-only syntax to what Boost's Perl mode understands,
/// leaving escapes and character classes alone.
std::string python_to_perl_syntax(const std::string& source);

class Pattern {
 public:
  /// Throws protocol::Error(kBadRequest) with Boost's explanation and the
  /// position of the mistake, so a bad regex is refused before any spawn.
  static Pattern compile(const std::string& source);

  bool matches(std::string_view line) const;
  const std::string& source() const { return source_; }

 private:
  Pattern(std::string source, boost::regex regex) : source_(std::move(source)), regex_(std::move(regex)) {}
  std::string source_;
  boost::regex regex_;
};

}  // namespace lpd::daemon
