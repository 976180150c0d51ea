// one HTTP token per user.
#include "daemon/http/user_tokens.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <vector>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/http/http_token.h"
#include "daemon/core/untrusted_file.h"

namespace lpd::daemon::http {
namespace {

/// A name and home directory fit in a passwd line; a file larger is none of lpd's.
constexpr std::size_t kMaxTokenFileBytes = 16 * 1024;

}  // namespace

PasswdAnswer passwd_entry(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  const int error = ::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found);
  // getpwuid_r(3): 0 and no entry is "no such user"; ENOENT, ESRCH, EBADF and
  // EPERM say the same on some systems; anything else is a failed lookup.
  if (error != 0 && error != ENOENT && error != ESRCH && error != EBADF && error != EPERM)
    return PasswdAnswer{false, std::nullopt};
  if (error != 0 || !found) return PasswdAnswer{true, std::nullopt};
  return PasswdAnswer{true, TokenOwner{found->pw_name ? found->pw_name : "", found->pw_dir ? found->pw_dir : ""}};
}

OwnerCheck check_owner(const TokenOwner& made_for, const PasswdAnswer& now) {
  if (!now.answered) return OwnerCheck::kUnknown;
  return now.entry && *now.entry == made_for ? OwnerCheck::kSame : OwnerCheck::kGone;
}

std::string bound_token_text(const std::string& token, const TokenOwner& owner) {
  return nlohmann::json{{"token", token}, {"user", owner.user}, {"home", owner.home}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<BoundToken> parse_bound_token(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (is_token_text(text)) return BoundToken{std::string(text), std::nullopt};  // the first format
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto token = j.find("token"), user = j.find("user"), home = j.find("home");
  if (token == j.end() || user == j.end() || home == j.end() || !token->is_string() || !user->is_string() ||
      !home->is_string() || !is_token_text(token->get_ref<const std::string&>()) ||
      user->get_ref<const std::string&>().empty())
    return std::nullopt;
  return BoundToken{token->get<std::string>(), TokenOwner{user->get<std::string>(), home->get<std::string>()}};
}

std::string token_file_name(uid_t uid) { return std::to_string(uid); }

std::optional<uid_t> uid_of_token_file(std::string_view name) {
  if (name.empty() || name.size() > 10) return std::nullopt;
  if (name.size() > 1 && name.front() == '0') return std::nullopt;
  for (char c : name)
    if (c < '0' || c > '9') return std::nullopt;
  unsigned long long value = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), value);
  if (error != std::errc() || end != name.data() + name.size()) return std::nullopt;
  if (value >= static_cast<unsigned long long>(std::numeric_limits<uid_t>::max())) return std::nullopt;
  return static_cast<uid_t>(value);
}

const std::string* TokenBook::find(uid_t uid) const {
  const auto it = tokens_.find(uid);
  return it == tokens_.end() ? nullptr : &it->second;
}

std::optional<uid_t> TokenBook::owner_of(std::string_view offered) const {
  std::optional<uid_t> found;
  for (const auto& [uid, token] : tokens_)
    if (token_matches(offered, token) && !found) found = uid;
  return found;
}

UserTokens::UserTokens(std::string state_dir, uid_t owner, PasswdLookup lookup, Watcher* watcher)
    : state_dir_(std::move(state_dir)), directory_(state_dir_ + "/http-tokens"), owner_(owner),
      lookup_(std::move(lookup)), watcher_(watcher) {
  book_.set(owner_, load_or_make_token(state_dir_));
  try {
    load_user_tokens();
  } catch (const std::exception& e) {
    // Users ask again (lpctl dashboard) and get a new token; lpd's own works.
    spdlog::warn("http: per-user tokens not loaded: {}", e.what());
  }
}

UniqueFd UserTokens::open_directory(bool create) const {
  UniqueFd dir(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir && errno == ENOENT && create) {
    if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot make " + directory_ + ": " + std::strerror(errno));
    dir = UniqueFd(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!dir) {
    if (errno == ENOENT) return dir;
    // ELOOP / ENOTDIR: a link or a file was put there; lpd does not follow or replace a directory.
    throw std::runtime_error(directory_ + " is not a directory lpd can use (" + std::strerror(errno) +
                             "); remove it and ask again");
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid())
    throw std::runtime_error(directory_ + " is not owned by lpd's user; remove it and ask again");
  // Only lpd's user may list or add names in it.
  if ((st.st_mode & 077) != 0 && ::fchmod(dir.get(), 0700) != 0)
    throw std::runtime_error("cannot make " + directory_ + " private: " + std::strerror(errno));
  return dir;
}

void UserTokens::load_user_tokens() {
  UniqueFd dir = open_directory(/*create=*/false);
  if (!dir) return;
  UniqueFd listing(::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0));
  if (!listing) throw std::runtime_error("cannot list " + directory_ + ": " + std::strerror(errno));
  DIR* stream = ::fdopendir(listing.get());
  if (!stream) throw std::runtime_error("cannot list " + directory_ + ": " + std::strerror(errno));
  listing.release();  // closedir closes it
  while (const dirent* entry = ::readdir(stream)) {
    const std::string name = entry->d_name;
    const auto uid = uid_of_token_file(name);
    if (!uid || *uid == owner_) continue;  // lpd's own token is http.token
    const auto text = read_own_file(dir.get(), name, kMaxTokenFileBytes);
    const auto bound = text ? parse_bound_token(*text) : std::nullopt;
    if (bound && !bound->owner) {
      // made before tokens named their user: whether uid still is
      // that user is unknowable, so it is refused; `lpctl dashboard` makes a
      // bound one (binding it now would hand it to whoever holds the uid).
      spdlog::warn("http: {}/{} holds a token bound to no user (written by an earlier lpd); deleted: uid {} "
                   "gets a new token from `lpctl dashboard`",
                   directory_, name, *uid);
      ::unlinkat(dir.get(), name.c_str(), 0);
    } else if (bound && check_owner(*bound->owner, lookup_(*uid)) == OwnerCheck::kGone) {
      spdlog::warn("http: {}/{} was made for user {} (home {}), whom uid {} no longer names; deleted", directory_,
                   name, bound->owner->user, bound->owner->home, *uid);
      ::unlinkat(dir.get(), name.c_str(), 0);
    } else if (bound) {
      book_.set(*uid, bound->token);
      made_for_[*uid] = *bound->owner;
    } else {
      spdlog::warn("http: {}/{} is not a token file of lpd's (a link, another owner or mode, or not one token); "
                   "uid {} gets a new token when it asks",
                   directory_, name, *uid);
    }
  }
  ::closedir(stream);
}

OwnerCheck UserTokens::check(uid_t uid) const {
  const auto it = made_for_.find(uid);
  if (uid == owner_ || it == made_for_.end()) return OwnerCheck::kSame;
  return check_owner(it->second, lookup_(uid));
}

void UserTokens::forget(uid_t uid, const std::string& why) {
  const auto it = made_for_.find(uid);
  spdlog::warn("http: uid {}'s token was made for user {} (home {}), {}; forgotten and {}/{} deleted", uid,
               it == made_for_.end() ? std::string("?") : it->second.user,
               it == made_for_.end() ? std::string("?") : it->second.home, why, directory_, token_file_name(uid));
  book_.erase(uid);
  made_for_.erase(uid);
  try {
    if (UniqueFd dir = open_directory(/*create=*/false)) ::unlinkat(dir.get(), token_file_name(uid).c_str(), 0);
  } catch (const std::exception& e) {
    spdlog::warn("http: {}", e.what());  // forgotten all the same: the file is read at the next start only
  }
  if (watcher_) watcher_->revoked(uid, "token's user is gone");
}

std::optional<uid_t> UserTokens::uid_of(std::string_view offered) {
  const auto uid = book_.owner_of(offered);
  if (!uid) return std::nullopt;
  switch (check(*uid)) {
    case OwnerCheck::kSame:
      if (!admitted(*uid)) return std::nullopt;
      return uid;
    case OwnerCheck::kGone:
      forget(*uid, "whom the uid no longer names");
      return std::nullopt;
    case OwnerCheck::kUnknown:
      spdlog::warn("http: the passwd database did not answer for uid {}: its token is refused until it does", *uid);
      return std::nullopt;
  }
  return std::nullopt;
}

bool UserTokens::still_acts(uid_t uid) {
  switch (check(uid)) {
    case OwnerCheck::kSame:
      return admitted(uid);
    case OwnerCheck::kGone:
      forget(uid, "whom the uid no longer names");
      return false;
    case OwnerCheck::kUnknown:
      return false;
  }
  return false;
}

bool UserTokens::admitted(uid_t uid) const {
  if (uid == owner_ || !watcher_ || watcher_->may_connect(uid)) return true;
  spdlog::info("http: uid {} may not connect to lpd's socket (not in its group any more?): its token is refused",
               uid);
  return false;
}

UserTokens::Issued UserTokens::token_for(uid_t uid, bool rotate) {
  const bool own = uid == owner_;
  const std::string path = own ? state_dir_ + "/http.token" : directory_ + "/" + token_file_name(uid);
  std::optional<TokenOwner> owner;
  if (!own) {
    // the token is bound to the user asking now; one made for an
    // earlier holder of the uid is never handed on (its maker knows it).
    const PasswdAnswer now = lookup_(uid);
    if (!now.answered) throw std::runtime_error("the passwd database did not answer for uid " + std::to_string(uid));
    if (!now.entry) throw std::runtime_error("uid " + std::to_string(uid) + " is not in the passwd database");
    owner = *now.entry;
    if (book_.find(uid) && check_owner(made_for_[uid], now) == OwnerCheck::kGone)
      forget(uid, "whom the uid no longer names");
  }
  const std::string* current = book_.find(uid);
  if (current && !rotate) return Issued{*current, path, false};
  std::string token = random_token();
  if (own) {
    write_token_file(AT_FDCWD, path, token, path);
  } else {
    UniqueFd dir = open_directory(/*create=*/true);
    // write_token_file ends the text with a newline: the JSON line is the "token" it writes.
    write_token_file(dir.get(), token_file_name(uid), bound_token_text(token, *owner), path);
    made_for_[uid] = *owner;
  }
  const bool replaced = current != nullptr;
  book_.set(uid, token);
  if (replaced && watcher_) watcher_->revoked(uid, "token rotated");
  return Issued{std::move(token), path, replaced};
}

}  // namespace lpd::daemon::http
