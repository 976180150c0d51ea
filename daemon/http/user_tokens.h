// one HTTP token per user, so a system lpd's dashboard
// and API act as the user who asked for the token, never as lpd.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon::http {

/// whom a per-user token was made for: the passwd entry of its uid
/// then, by name and home directory. userdel and a later useradd given the
/// same uid make another user (another name, or another home): the first
/// user's token must not act as them.
struct TokenOwner {
  std::string user;
  std::string home;
  bool operator==(const TokenOwner&) const = default;
};

/// What the passwd database says of a uid now (getpwuid_r).
struct PasswdAnswer {
  bool answered = true;              // false: the lookup failed (NSS down), nothing known
  std::optional<TokenOwner> entry;   // nullopt (answered): no such user
};
/// `uid`'s passwd entry now, through getpwuid_r.
PasswdAnswer passwd_entry(uid_t uid);

/// Whether a token made for `made_for` still acts: kSame when the passwd
/// database names the same user now; kGone when it names another user or
/// none (the token is forgotten and its file deleted); kUnknown when the
/// lookup failed (refused now, kept for when the database answers again).
enum class OwnerCheck { kSame, kGone, kUnknown };
OwnerCheck check_owner(const TokenOwner& made_for, const PasswdAnswer& now);

/// A per-user token file's text: one JSON object
/// {"token": "<64 hex>", "user": NAME, "home": DIR}, so the token is bound
/// to the user it was made for.
std::string bound_token_text(const std::string& token, const TokenOwner& owner);
/// What a per-user token file holds: the token, and whom it was made for
/// (nullopt: a file of the first format, the token alone, bound to no one).
/// nullopt when the text is neither.
struct BoundToken {
  std::string token;
  std::optional<TokenOwner> owner;
};
std::optional<BoundToken> parse_bound_token(std::string_view text);

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
  /// `uid` has no token from now on.
  void erase(uid_t uid) { tokens_.erase(uid); }
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
/// and a request with it acts with exactly that user's rights. A non-root
/// lpd's socket is its own user's only (--socket-group is for root), so
/// there it is that user's http.token alone.
class UserTokens {
 public:
  /// What the HTTP side answers and hears (HttpServer's).
  class Watcher {
   public:
    virtual ~Watcher() = default;
    /// Whether `uid` may connect to lpd's Unix socket now
    /// (socket_admits_now). A token of a user who may not (removed from
    /// the socket's group) is refused, not forgotten: it acts again once
    /// they may. lpd's own user is not asked: it always may.
    virtual bool may_connect(uid_t uid) = 0;
    /// `uid`'s token was just replaced or forgotten, and why ("token
    /// rotated", "token's user is gone"): open WebSockets that showed the
    /// old one are closed with that reason.
    virtual void revoked(uid_t uid, const std::string& why) = 0;
  };

  using PasswdLookup = std::function<PasswdAnswer(uid_t)>;
  /// Loads (or makes) lpd's own token and loads every valid
  /// `http-tokens/<uid>` file; an invalid one is skipped with a warning
  /// (its user gets a new token on request). A file whose user is
  /// gone (check_owner kGone), or of the first format (the token alone,
  /// bound to no one: lpd cannot tell whether the uid changed hands since),
  /// is deleted with a warning; its user gets a new token from `lpctl
  /// dashboard`. `lookup`: the passwd database (tests pass their own).
  /// Throws std::runtime_error when lpd's own token cannot be made.
  /// `watcher`: asked whether a user may connect and told of revoked
  /// tokens (null: anyone may, nobody is told).
  UserTokens(std::string state_dir, uid_t owner, PasswdLookup lookup = passwd_entry, Watcher* watcher = nullptr);

  /// The uid whose token `offered` is (TokenBook::owner_of), when that
  /// token's user is still the one it was made for: a token whose
  /// uid now names another user, or none, is forgotten, its file deleted,
  /// on_revoked called and a warning logged; nullopt then (401).
  std::optional<uid_t> uid_of(std::string_view offered);
  /// Whether `uid`'s token still acts (uid_of's check, for a WebSocket
  /// that showed it earlier and now sends a request): false when its user
  /// is gone (forgotten as uid_of does) or the lookup failed.
  bool still_acts(uid_t uid);
  /// may_connect for `uid` (true for lpd's own user or when unset); a
  /// refusal is logged.
  bool admitted(uid_t uid) const;

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


  uid_t owner() const { return owner_; }
  const std::string& directory() const { return directory_; }

 private:
  /// The http-tokens directory, opened without following a link;
  /// created (0700) when `create` and missing; an empty UniqueFd when
  /// absent. Throws std::runtime_error when it is a link, not a directory
  /// or not lpd's user's.
  UniqueFd open_directory(bool create) const;
  void load_user_tokens();
  /// Forgets `uid`'s token and deletes its file (its user is gone).
  void forget(uid_t uid, const std::string& why);
  /// Whether `uid`'s token, if any, still acts (lpd's own always does).
  OwnerCheck check(uid_t uid) const;

  std::string state_dir_;
  std::string directory_;
  uid_t owner_;
  PasswdLookup lookup_;
  Watcher* watcher_;
  TokenBook book_;
  std::map<uid_t, TokenOwner> made_for_;  // every per-user token's user (not lpd's own)
};

}  // namespace lpd::daemon::http
