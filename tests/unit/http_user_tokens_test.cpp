// issue 16 (h16tok): one HTTP token per user: whose a token is, which file names are tokens.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "daemon/http/http_token.h"
#include "daemon/http/user_tokens.h"
#include "tests/unit/temp_dir.h"

using namespace lpd::daemon::http;

namespace {

/// What UserTokens told its watcher; every user may connect.
struct Revocations : UserTokens::Watcher {
  std::vector<std::pair<uid_t, std::string>> seen;
  int count = 0;
  bool may_connect(uid_t) override { return true; }
  void revoked(uid_t uid, const std::string& why) override {
    seen.emplace_back(uid, why);
    ++count;
  }
};

std::string token_of(char c) { return std::string(64, c); }


std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// h16srv: a passwd database the test edits (userdel, useradd -u).
struct FakePasswd {
  std::map<uid_t, TokenOwner> users;
  bool answering = true;
  UserTokens::PasswdLookup lookup() {
    return [this](uid_t uid) {
      if (!answering) return PasswdAnswer{false, std::nullopt};
      const auto it = users.find(uid);
      return PasswdAnswer{true, it == users.end() ? std::nullopt : std::optional<TokenOwner>(it->second)};
    };
  }
};

/// Writes `text` to `path` with mode 0600, as lpd would.
void write_private(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), 0600);
}

}  // namespace

TEST_CASE("a token file's name is its user's uid in plain decimal", "[http][tokens]") {
  CHECK(uid_of_token_file("1001") == uid_t{1001});
  CHECK(uid_of_token_file("0") == uid_t{0});
  CHECK(token_file_name(1001) == "1001");
  CHECK(uid_of_token_file(token_file_name(4000000000u)) == uid_t{4000000000u});
  // Anything else is no token file: leftovers of a write, planted names, other spellings.
  for (const char* name : {"", ".", "..", "01001", "+1001", "-1", "1001.new.42", "10 01", "abc", "1001\n",
                           "99999999999", "4294967295" /* (uid_t)-1 names nobody */, "4294967296"})
    CHECK_FALSE(uid_of_token_file(name));
}

TEST_CASE("a token is its user's: every token is compared, none shared", "[http][tokens]") {
  TokenBook book;
  CHECK_FALSE(book.owner_of(token_of('a')));  // an empty book knows no one
  book.set(0, token_of('a'));
  book.set(1001, token_of('b'));
  book.set(1002, token_of('c'));
  CHECK(book.owner_of(token_of('a')) == uid_t{0});
  CHECK(book.owner_of(token_of('b')) == uid_t{1001});
  CHECK(book.owner_of(token_of('c')) == uid_t{1002});
  CHECK_FALSE(book.owner_of(token_of('d')));
  CHECK_FALSE(book.owner_of(""));
  CHECK_FALSE(book.owner_of(std::string(63, 'b')));  // a prefix of one is none
  CHECK_FALSE(book.owner_of(token_of('b') + "b"));
  // A replaced token no longer matches; the new one does.
  book.set(1001, token_of('e'));
  CHECK_FALSE(book.owner_of(token_of('b')));
  CHECK(book.owner_of(token_of('e')) == uid_t{1001});
  REQUIRE(book.find(1001));
  CHECK(*book.find(1001) == token_of('e'));
  CHECK_FALSE(book.find(7));
  CHECK(book.size() == 3);
}

TEST_CASE("lpd's tokens are 64 lowercase hex digits from getrandom", "[http][tokens]") {
  const std::string one = random_token(), two = random_token();
  CHECK(is_token_text(one));
  CHECK(one != two);
  CHECK_FALSE(is_token_text(token_of('A')));
  CHECK_FALSE(is_token_text(token_of('g')));
  CHECK_FALSE(is_token_text(std::string(63, 'a')));
}

TEST_CASE("each user's token is kept in its own file, and a link there is replaced, not followed",
          "[http][tokens]") {
  TempDir state{"lpd-tok"};
  const uid_t self = ::geteuid();
  const uid_t other = self == 4242 ? 4243 : 4242;
  FakePasswd passwd;
  passwd.users[other] = TokenOwner{"tok", "/home/tok"};
  std::string token;
  {
    UserTokens tokens(state.path, self, passwd.lookup());
    CHECK(tokens.token_for(self, false).token == read_all(state.path + "/http.token").substr(0, 64));
    const auto issued = tokens.token_for(other, false);
    token = issued.token;
    CHECK(issued.path == state.path + "/http-tokens/" + std::to_string(other));
    CHECK_FALSE(issued.rotated);
    CHECK(tokens.uid_of(token) == other);
    struct stat st {};
    REQUIRE(::lstat(issued.path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    REQUIRE(::stat((state.path + "/http-tokens").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    CHECK(tokens.token_for(other, false).token == token);  // asked again: the same
  }
  {
    UserTokens again(state.path, self, passwd.lookup());  // a restart keeps it
    CHECK(again.uid_of(token) == other);
  }
  // A link planted at the user's token: not read, and replaced by the next write.
  const std::string path = state.path + "/http-tokens/" + std::to_string(other);
  const std::string victim = state.path + "/victim";
  std::ofstream(victim) << "victim\n";
  std::filesystem::remove(path);
  std::filesystem::create_symlink(victim, path);
  Revocations revocations;
  UserTokens after(state.path, self, passwd.lookup(), &revocations);
  CHECK_FALSE(after.uid_of(token));
  const auto& rotations = revocations.count;
  const auto fresh = after.token_for(other, false);
  CHECK(fresh.token != token);
  CHECK(rotations == 0);  // a first token replaces none
  CHECK_FALSE(std::filesystem::is_symlink(path));
  CHECK(read_all(victim) == "victim\n");
  const auto rotated = after.token_for(other, true);
  CHECK(rotated.rotated);
  CHECK(rotations == 1);
  CHECK_FALSE(after.uid_of(fresh.token));
  CHECK(after.uid_of(rotated.token) == other);
}

// -- h16srv: a token is bound to the user it was made for -------------------

TEST_CASE("a per-user token file names the user it was made for", "[http][tokens]") {
  const TokenOwner b{"lpdtok_b", "/home/lpdtok_b"};
  const auto parsed = parse_bound_token(bound_token_text(token_of('b'), b) + "\n");
  REQUIRE(parsed);
  CHECK(parsed->token == token_of('b'));
  CHECK(parsed->owner == b);
  // The first format (the token alone) is a token bound to no one.
  const auto old = parse_bound_token(token_of('c') + "\n");
  REQUIRE(old);
  CHECK(old->token == token_of('c'));
  CHECK_FALSE(old->owner);
  // Anything else is no token file.
  for (const std::string& text : {std::string("{}"), std::string("[1]"), std::string("not json"),
                                 std::string(R"({"token": "abc", "user": "b", "home": "/"})"),
                                 R"({"token": ")" + token_of('b') + R"(", "user": "", "home": "/"})",
                                 R"({"token": ")" + token_of('b') + R"(", "user": "b"})"})
    CHECK_FALSE(parse_bound_token(text));
  // The same user: the same name and home; a lookup that failed says nothing.
  CHECK(check_owner(b, PasswdAnswer{true, b}) == OwnerCheck::kSame);
  CHECK(check_owner(b, PasswdAnswer{true, TokenOwner{"lpdtok_d", "/home/lpdtok_d"}}) == OwnerCheck::kGone);
  CHECK(check_owner(b, PasswdAnswer{true, TokenOwner{"lpdtok_b", "/srv/other"}}) == OwnerCheck::kGone);
  CHECK(check_owner(b, PasswdAnswer{true, std::nullopt}) == OwnerCheck::kGone);
  CHECK(check_owner(b, PasswdAnswer{false, std::nullopt}) == OwnerCheck::kUnknown);
}

TEST_CASE("a deleted user's token does not act for the next user given its uid", "[http][tokens]") {
  TempDir state{"lpd-tok"};
  const uid_t self = ::geteuid();
  const uid_t uid = self == 4242 ? 4243 : 4242;
  const std::string path = state.path + "/http-tokens/" + std::to_string(uid);
  FakePasswd passwd;
  passwd.users[uid] = TokenOwner{"lpdtok_b", "/home/lpdtok_b"};
  Revocations revocations;
  UserTokens tokens(state.path, self, passwd.lookup(), &revocations);
  const auto& revoked = revocations.seen;
  const std::string b_token = tokens.token_for(uid, false).token;
  CHECK(tokens.uid_of(b_token) == uid);
  CHECK(parse_bound_token(read_all(path))->owner == passwd.users[uid]);

  // The database does not answer: refused, but kept.
  passwd.answering = false;
  CHECK_FALSE(tokens.uid_of(b_token));
  CHECK(std::filesystem::exists(path));
  passwd.answering = true;
  CHECK(tokens.uid_of(b_token) == uid);

  CHECK(tokens.still_acts(uid));
  CHECK(tokens.still_acts(self));  // lpd's own token is bound to no passwd entry

  // userdel lpdtok_b; useradd -u <uid> lpdtok_d
  passwd.users[uid] = TokenOwner{"lpdtok_d", "/home/lpdtok_d"};
  CHECK_FALSE(tokens.still_acts(uid));  // a WebSocket that showed it earlier is refused
  CHECK_FALSE(tokens.uid_of(b_token));
  CHECK_FALSE(std::filesystem::exists(path));  // forgotten, file and all
  REQUIRE(revoked.size() == 1);
  CHECK(revoked[0] == std::make_pair(uid, std::string("token's user is gone")));
  CHECK_FALSE(tokens.uid_of(b_token));  // and stays so
  const auto d = tokens.token_for(uid, false);
  CHECK(d.token != b_token);
  CHECK_FALSE(d.rotated);
  CHECK(tokens.uid_of(d.token) == uid);
  CHECK(parse_bound_token(read_all(path))->owner == passwd.users[uid]);
}

TEST_CASE("asking for a token never hands on the one of the uid's earlier user", "[http][tokens]") {
  TempDir state{"lpd-tok"};
  const uid_t self = ::geteuid();
  const uid_t uid = self == 4242 ? 4243 : 4242;
  FakePasswd passwd;
  passwd.users[uid] = TokenOwner{"lpdtok_b", "/home/lpdtok_b"};
  UserTokens tokens(state.path, self, passwd.lookup());
  const std::string b_token = tokens.token_for(uid, false).token;
  passwd.users[uid] = TokenOwner{"lpdtok_d", "/home/lpdtok_d"};
  // lpdtok_d runs `lpctl dashboard` before b's token was ever offered again.
  const std::string d_token = tokens.token_for(uid, false).token;
  CHECK(d_token != b_token);
  CHECK_FALSE(tokens.uid_of(b_token));
  CHECK(tokens.uid_of(d_token) == uid);
  // Nor may someone not in the database get one.
  passwd.users.erase(uid);
  CHECK_THROWS_AS(tokens.token_for(uid, false), std::runtime_error);
}

TEST_CASE("at start, tokens of users gone and tokens bound to no one are deleted", "[http][tokens]") {
  TempDir state{"lpd-tok"};
  const uid_t self = ::geteuid();
  const uid_t b = self == 4242 ? 4243 : 4242, c = b + 10, e = b + 20;
  FakePasswd passwd;
  passwd.users[b] = TokenOwner{"lpdtok_b", "/home/lpdtok_b"};
  passwd.users[e] = TokenOwner{"lpdtok_e", "/home/lpdtok_e"};
  std::string b_token, e_token;
  {
    UserTokens tokens(state.path, self, passwd.lookup());
    b_token = tokens.token_for(b, false).token;
    e_token = tokens.token_for(e, false).token;
  }
  // An earlier lpd's file: the token alone.
  const std::string c_path = state.path + "/http-tokens/" + std::to_string(c);
  write_private(c_path, token_of('c') + "\n");
  passwd.users[c] = TokenOwner{"lpdtok_c", "/home/lpdtok_c"};
  passwd.users.erase(b);  // userdel lpdtok_b while lpd was down
  UserTokens restarted(state.path, self, passwd.lookup());
  CHECK_FALSE(restarted.uid_of(b_token));
  CHECK_FALSE(std::filesystem::exists(state.path + "/http-tokens/" + std::to_string(b)));
  CHECK_FALSE(restarted.uid_of(token_of('c')));
  CHECK_FALSE(std::filesystem::exists(c_path));
  CHECK(restarted.uid_of(e_token) == e);
  // c asks: a new token, bound to c.
  const auto fresh = restarted.token_for(c, false);
  CHECK(fresh.token != token_of('c'));
  CHECK(parse_bound_token(read_all(c_path))->owner == passwd.users[c]);
}

// -- the third attack: a token acts only while its user may connect ----------
#include "daemon/http/socket_admission.h"

TEST_CASE("a token's user may connect as the socket's mode and group say", "[http][tokens]") {
  using lpd::daemon::http::socket_admits;
  const uid_t owner = 0;
  const gid_t group = 900;
  const mode_t root_socket = 0660;  // a root lpd's socket, given to --socket-group
  CHECK(socket_admits(0, 0, {}, owner, group, root_socket));                  // root
  CHECK(socket_admits(1001, 1001, {group}, owner, group, root_socket));       // a member
  CHECK(socket_admits(1001, group, {}, owner, group, root_socket));           // by primary group
  CHECK_FALSE(socket_admits(1002, 1002, {}, owner, group, root_socket));      // removed from the group
  CHECK_FALSE(socket_admits(1002, 1002, {901}, owner, group, root_socket));   // another group
  CHECK_FALSE(socket_admits(1001, 1001, {group}, owner, group, 0640));        // the group may not write
  const mode_t user_socket = 0600;  // a user's lpd
  CHECK(socket_admits(1001, 1001, {}, 1001, 1001, user_socket));
  CHECK_FALSE(socket_admits(1002, 1001, {1001}, 1001, 1001, user_socket));
  CHECK(socket_admits(1002, 1002, {}, 1001, 1001, 0666));                     // others' bits
}
