#pragma once
// what lpctl adds to a refused command line, so the
// user learns the fix from the error itself. Plain rules, no I/O.

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lpd::client {

/// The Levenshtein distance between `a` and `b` (insert, delete, replace
/// one character each cost 1), with an adjacent swap costing 1 too
/// (optimal string alignment, as git's and cargo's suggestions count).
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1, 0));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

/// The command of `names` that `typed` most likely meant: the nearest by
/// edit_distance when that is at most a third of the longer word (at least
/// 1, at most 2), else the one `typed` is the start of (at least 2
/// characters: "even" for "events"). nullopt when nothing is close, or
/// `typed` is one of `names`. Among equally near names, one as long as
/// `typed`, then the first in `names` (lpctl's help order). Copies git's
/// "did you mean" idea, not its weights.
inline std::optional<std::string> suggest_command(std::string_view typed, const std::vector<std::string>& names) {
  if (typed.empty() || std::find(names.begin(), names.end(), typed) != names.end()) return std::nullopt;
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  for (const auto& name : names) {
    const std::size_t distance = edit_distance(typed, name);
    const std::size_t allowed = std::clamp<std::size_t>(std::max(typed.size(), name.size()) / 3, 1, 2);
    // A tie goes to the word as long as the typed one (a slip of the
    // fingers, "rusn": runs, not run), then to the first in `names`.
    const bool better = !best || distance < best_distance ||
                        (distance == best_distance && name.size() == typed.size() && best->size() != typed.size());
    if (distance <= allowed && better) {
      best = name;
      best_distance = distance;
    }
  }
  if (best) return best;
  if (typed.size() >= 2) {
    for (const auto& name : names)
      if (name.size() > typed.size() && name.compare(0, typed.size(), typed) == 0) return name;
  }
  return std::nullopt;
}

/// The words of an lpctl command line (argv without argv[0]) up to its
/// command: where the command word is (an index into `args`), skipping
/// the global options and their values. nullopt when there is no command
/// word (only options, or `--` first).
inline std::optional<std::size_t> command_word_index(const std::vector<std::string>& args) {
  static const std::vector<std::string> kWithValue = {"--socket", "--timeout"};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") return std::nullopt;
    if (arg.size() > 1 && arg[0] == '-') {
      if (std::find(kWithValue.begin(), kWithValue.end(), arg) != kWithValue.end()) ++i;
      continue;
    }
    return i;
  }
  return std::nullopt;
}

/// The one line for a command line whose command word is none of `names`
/// (`program`'s subcommands, lpctl's or lpd's): "PROGRAM: unknown command
/// 'X'; did you mean 'Y'?" (suggest_command), or "...; see PROGRAM --help
/// for the commands". nullopt when the command word is known or absent:
/// the parser's own message then says what is wrong. Said instead of the
/// parser's "argument not expected", which would contradict it.
inline std::optional<std::string> unknown_command_message(std::string_view program, const std::vector<std::string>& args,
                                                          const std::vector<std::string>& names) {
  const auto at = command_word_index(args);
  if (!at) return std::nullopt;
  const std::string& word = args[*at];
  if (std::find(names.begin(), names.end(), word) != names.end()) return std::nullopt;
  std::string text = std::string(program) + ": unknown command '" + word + "'; ";
  if (const auto meant = suggest_command(word, names)) return text + "did you mean '" + *meant + "'?";
  return text + "see " + std::string(program) + " --help for the commands";
}

/// The hint for an `lpctl run` (or `ensure`) line whose command was given
/// without `--` before it, so lpctl read (or would read) the command's
/// options (pytest's -q, --timeout 30) as its own. `args`: the words after
/// the subcommand; `value_options`: lpctl's options there that take a value
/// (their value is no command word). Returns the line to print when no
/// `--` is among `args` and an option follows the first word that is not
/// an option nor an option's value; nullopt otherwise (`lpctl run --bogus
/// -- cmd` is lpctl's own unknown option).
inline std::optional<std::string> dashdash_hint(std::string_view subcommand, const std::vector<std::string>& args,
                                                const std::vector<std::string>& value_options = {}) {
  const auto is_option = [](const std::string& word) { return word.size() > 1 && word[0] == '-'; };
  if (std::find(args.begin(), args.end(), "--") != args.end()) return std::nullopt;
  std::size_t i = 0;
  for (; i < args.size() && is_option(args[i]); ++i)
    if (args[i].find('=') == std::string::npos &&
        std::find(value_options.begin(), value_options.end(), args[i]) != value_options.end())
      ++i;  // its value
  if (i >= args.size()) return std::nullopt;
  const auto first = std::find_if(args.begin() + static_cast<long>(i), args.end(), is_option);
  if (first == args.end()) return std::nullopt;
  return "put -- before the command, so that its options (" + *first + " here) are not read as lpctl's: lpctl " +
         std::string(subcommand) + " [OPTIONS] -- COMMAND [ARGS...]";
}

}  // namespace lpd::client
