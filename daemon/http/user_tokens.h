// issue 16 (h16tok): one HTTP token per user, so a system lpd's dashboard
// and API act as the user who asked for the token, never as lpd.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/unique_fd.h"

namespace lpd::daemon::http {

/// The name of a user's token file in `<state-dir>/http-tokens/`: the uid
/// in decimal ("1001").
std::string token_file_name(uid_t uid);

/// The uid a file name in `<state-dir>/http-tokens/` stands for: decimal
/// digits only, no sign, no leading zero (but "0"), within uid_t and not
/// (uid_t)-1 (which names nobody). nullopt for anything else (a leftover
/// "1001.new.42", a planted "../x", "01001"), which lpd skips.
std::optional<uid_t> uid_of_token_file(std::string_view name);

/// TokenBook holds each user's token in memory, and says whose a token is.
/// Plain rules, no I/O.
class TokenBook {
 public:
  /// `uid`'s token from now on (the old one no longer matches).
  void set(uid_t uid, std::string token) { tokens_[uid] = std::move(token); }
  /// `uid`'s token, nullptr when it has none.
  const std::string* find(uid_t uid) const;
  /// The uid whose token `offered` is: compared with every token in full
  /// (token_matches, no early exit on a match either), so the time taken
  /// says nothing of which bytes or whose token matched. nullopt for none.
  std::optional<uid_t> owner_of(std::string_view offered) const;
  std::size_t size() const { return tokens_.size(); }

 private:
  std::map<uid_t, std::string> tokens_;
};

/// UserTokens: the tokens lpd accepts on HTTP, and where they live.
///   - lpd's own user: `<state-dir>/http.token` (load_or_make_token).
///   - any other uid: `<state-dir>/http-tokens/<uid>`, made on that user's
///     first `http.token` request (256 random bits), kept across restarts.
/// Every file is lpd's user's, mode 0600, in a directory of mode 0700;
/// written as a new file (O_EXCL|O_NOFOLLOW) renamed over the name, read
/// with O_NOFOLLOW: a link planted at a token's name is never followed (a
/// link there is replaced on the next write and is no token meanwhile).
/// The rule for who gets a token: whoever asks on lpd's Unix socket gets
/// the one of the uid the kernel names for the connection (SO_PEERCRED),
/// and a request with it acts with exactly that user's rights. On a
/// non-root lpd that is its own user, or members of --socket-group, who
/// get no more over HTTP than on the socket.
class UserTokens {
 public:
  /// Loads (or makes) lpd's own token and loads every valid
  /// `http-tokens/<uid>` file; an invalid one is skipped with a warning
  /// (its user gets a new token on request). Throws std::runtime_error when
  /// lpd's own token cannot be made.
  UserTokens(std::string state_dir, uid_t owner);

  /// The uid whose token `offered` is (TokenBook::owner_of).
  std::optional<uid_t> uid_of(std::string_view offered) const { return book_.owner_of(offered); }

  struct Issued {
    std::string token;
    std::string path;  // the file that keeps it
    bool rotated = false;
  };
  /// `uid`'s token, made and written on its first request; with `rotate`
  /// a new one replaces it (written first, so a failed write leaves the
  /// old one working). Throws std::runtime_error when it cannot be
  /// written (the directory is a link, not lpd's, ...).
  Issued token_for(uid_t uid, bool rotate);

  /// Called with the uid whose token was just replaced (open WebSockets
  /// that showed the old one are closed).
  std::function<void(uid_t)> on_rotated;

  uid_t owner() const { return owner_; }
  const std::string& directory() const { return directory_; }

 private:
  /// The http-tokens directory, opened without following a link;
  /// created (0700) when `create` and missing; an empty UniqueFd when
  /// absent. Throws std::runtime_error when it is a link, not a directory
  /// or not lpd's user's.
  UniqueFd open_directory(bool create) const;
  void load_user_tokens();

  std::string state_dir_;
  std::string directory_;
  uid_t owner_;
  TokenBook book_;
};

}  // namespace lpd::daemon::http
