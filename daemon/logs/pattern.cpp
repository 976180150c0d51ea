#include "daemon/logs/pattern.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <memory>

#include <boost/regex/icu.hpp>

#include "protocol/error.h"
#include "protocol/utf8.h"

// (ReDoS): Boost.Regex gives up on a search once it has visited
// more states than perl_matcher::estimate_max_state_count allows, but its
// own estimate grows with the line length times the square of the
// pattern's size (over 10^9 for `(.*a){25}!x` on a 60000-character line:
// seconds of the event loop, for every user). Searches made here use an
// allocator type of their own, so the matcher they instantiate is ours
// alone; its estimate is replaced by the caller's allowance, and its
// find() reports the states it used, through this thread's SearchWork.
namespace lpd::daemon {
namespace {
using Position = const char32_t*;
/// std::allocator under a name only this file uses (see above).
template <class T>
struct BudgetedAllocator : std::allocator<T> {
  using value_type = T;
  BudgetedAllocator() noexcept = default;
  template <class U>
  BudgetedAllocator(const BudgetedAllocator<U>&) noexcept {}  // NOLINT: allocators convert implicitly
  template <class U>
  struct rebind {
    using other = BudgetedAllocator<U>;
  };
};
using BudgetedResults = boost::match_results<Position, BudgetedAllocator<boost::sub_match<Position>>>;
struct SearchWork {
  std::uint64_t allowed = 0;
  std::uint64_t used = 0;
};
thread_local SearchWork search_work;
}  // namespace
}  // namespace lpd::daemon

namespace boost::BOOST_REGEX_DETAIL_NS {
using BudgetedMatcher = perl_matcher<lpd::daemon::Position,
                                     lpd::daemon::BudgetedAllocator<sub_match<lpd::daemon::Position>>, icu_regex_traits>;
template <>
void BudgetedMatcher::estimate_max_state_count(std::random_access_iterator_tag*) {
  max_state_count = static_cast<std::ptrdiff_t>(
      std::min<std::uint64_t>(lpd::daemon::search_work.allowed, static_cast<std::uint64_t>(PTRDIFF_MAX) - 2));
}
template <>
bool BudgetedMatcher::find() {
  try {
    const bool found = find_imp();
    lpd::daemon::search_work.used = static_cast<std::uint64_t>(state_count);
    return found;
  } catch (...) {
    lpd::daemon::search_work.used = static_cast<std::uint64_t>(state_count);
    throw;
  }
}
}  // namespace boost::BOOST_REGEX_DETAIL_NS

namespace lpd::daemon {

std::uint64_t SearchCredit::allowance_for(std::size_t line_bytes) {
  credit_ = std::min<std::uint64_t>(kMax, credit_ + kPerLine + kPerByte * static_cast<std::uint64_t>(line_bytes));
  return credit_;
}

void SearchCredit::spend(std::uint64_t states) { credit_ -= std::min(states, credit_); }


struct Pattern::Compiled {
  boost::u32regex regex;
};

std::u32string decode_utf8_lossy(std::string_view bytes) {
  constexpr char32_t kReplacement = 0xFFFD;
  std::u32string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char lead = p[i];
    if (lead < 0x80) {
      out.push_back(lead);
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t length = protocol::utf8_sequence_length(bytes, i, &cp);
    const bool valid = length > 0;
    if (valid) {
      out.push_back(cp);
      i += length;
    } else {
      out.push_back(kReplacement);  // this byte only; the next is looked at afresh
      ++i;
    }
  }
  return out;
}

std::string python_to_perl_syntax(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  bool in_class = false;
  for (std::size_t i = 0; i < source.size(); ++i) {
    const char c = source[i];
    if (c == '\\' && i + 1 < source.size()) {
      out += source.substr(i, 2);
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member, not the end.
      if (i + 1 < source.size() && source[i + 1] == '^') out.push_back(source[++i]);
      if (i + 1 < source.size() && source[i + 1] == ']') out.push_back(source[++i]);
      continue;
    }
    if (source.compare(i, 4, "(?P<") == 0) {
      out += "(?<";
      i += 3;
      continue;
    }
    if (source.compare(i, 4, "(?P=") == 0) {
      const auto close = source.find(')', i);
      if (close != std::string::npos) {
        out += "\\k<" + source.substr(i + 4, close - i - 4) + ">";
        i = close;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

Pattern Pattern::compile(const std::string& source) {
  if (source.empty())
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "the pattern is empty; it would match any line");
  if (source.size() > kMaxPatternBytes)
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "the pattern is " + std::to_string(source.size()) +
                                                                " bytes long; at most " +
                                                                std::to_string(kMaxPatternBytes) + " are allowed");
  // Decoded the same lossy way as lines, so an invalid byte in a pattern
  // (JSON text cannot carry one, a state file might) is U+FFFD, not a throw.
  const std::u32string perl = decode_utf8_lossy(python_to_perl_syntax(source));
  try {
    auto compiled = std::make_shared<Compiled>(Compiled{boost::make_u32regex(perl.begin(), perl.end(), boost::regex::perl)});
    return Pattern(source, std::move(compiled));
  } catch (const boost::regex_error& e) {
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "invalid pattern \"" + source + "\": " + e.what() + " (at offset " +
                              std::to_string(e.position()) + ")");
  } catch (const std::exception& e) {
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "invalid pattern \"" + source + "\": " + e.what());
  }
}

bool Pattern::matches(std::string_view line) const {
  SearchCredit credit;
  return search(line, credit);
}

bool Pattern::search(std::string_view line, SearchCredit& credit) const {
  const std::u32string text = decode_utf8_lossy(line);
  BudgetedResults results;
  search_work = SearchWork{credit.allowance_for(line.size()), 0};
  try {
    const bool found = boost::u32regex_search(text.data(), text.data() + text.size(), results, compiled_->regex);
    credit.spend(search_work.used);
    return found;
  } catch (const std::runtime_error&) {
    // Boost gave up (the allowance above, its recursion or memory limit):
    // the daemon's loop is not spent on one helper's lines, and the caller
    // is told, rather than hear of a line that "did not match".
    credit.spend(search_work.used);
    throw PatternTooComplex("pattern \"" + source_ + "\" is too complex: lpd gave up searching a line of " +
                            std::to_string(text.size()) + " characters with it after " +
                            std::to_string(search_work.used) +
                            " steps; simplify it (nested repeats such as (.*a){25} backtrack without end)");
  }
}

}  // namespace lpd::daemon
