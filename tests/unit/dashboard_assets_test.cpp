// The dashboard's files built into lpd (issue 16, h16dash): what GET / and
// its files serve, byte for byte, and nothing else.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "daemon/http/dashboard/dashboard_assets.h"
#include "daemon/http/dashboard/embedded_file.h"

using lpd::daemon::http::dashboard_asset;
using lpd::daemon::http::dashboard_content_type;

namespace {
std::string source_file(const std::string& name) {
  std::ifstream in(std::string(LPD_SOURCE_DIR) + "/daemon/http/dashboard/" + name, std::ios::binary);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

TEST_CASE("each dashboard file is embedded byte for byte with its type", "[dashboard]") {
  for (const auto& [name, type] : {std::pair<std::string, std::string>{"index.html", "text/html; charset=utf-8"},
                                  {"app.js", "text/javascript; charset=utf-8"},
                                  {"lpd_api.js", "text/javascript; charset=utf-8"},
                                  {"model.js", "text/javascript; charset=utf-8"},
                                  {"view.js", "text/javascript; charset=utf-8"},
                                  {"style.css", "text/css; charset=utf-8"}}) {
    auto asset = dashboard_asset("/" + name);
    REQUIRE(asset);
    CHECK(asset->content_type == type);
    CHECK(asset->body == source_file(name));
  }
}

TEST_CASE("/ is the dashboard's index.html", "[dashboard]") {
  auto root = dashboard_asset("/");
  REQUIRE(root);
  CHECK(root->body == dashboard_asset("/index.html")->body);
  CHECK(root->content_type == "text/html; charset=utf-8");
}

TEST_CASE("only the exact names of embedded files are found", "[dashboard]") {
  for (const char* path : {"", "index.html", "/INDEX.HTML", "/index.html/", "/../index.html", "/./app.js",
                           "//app.js", "/app.js?x=1", "/dashboard/app.js", "/api/op/ping", "/ws", "/jobs",
                           "/embed_files.cmake", "/CMakeLists.txt", "/dashboard_assets.cpp"})
    CHECK_FALSE(dashboard_asset(path));
}

TEST_CASE("every file index.html loads is lpd's own, and embedded", "[dashboard]") {
  const std::string html(dashboard_asset("/")->body);
  // Every src= and href= is a path on lpd or an anchor in the page: nothing
  // from another host (no CDN), so the page works without a network.
  const std::regex url(R"re((?:src|href)="([^"]*)")re");
  int files = 0;
  for (std::sregex_iterator it(html.begin(), html.end(), url), end; it != end; ++it) {
    const std::string target = (*it)[1].str();
    INFO(target);
    REQUIRE_FALSE(target.empty());
    if (target[0] == '#') continue;
    CHECK(target[0] == '/');
    CHECK(target.rfind("//", 0) != 0);
    CHECK(dashboard_asset(target));
    ++files;
  }
  CHECK(files == 5);  // style.css, app.js and the modules it imports (preloaded)
}

TEST_CASE("every module a script imports is embedded", "[dashboard]") {
  // ES modules: `import ... from './x.js'` loads /x.js from lpd.
  const std::regex import_from(R"re(from '\./([A-Za-z0-9_]+\.js)')re");
  int imports = 0;
  for (const char* script : {"/app.js", "/lpd_api.js", "/model.js", "/view.js"}) {
    const std::string text(dashboard_asset(script)->body);
    for (std::sregex_iterator it(text.begin(), text.end(), import_from), end; it != end; ++it, ++imports) {
      INFO(script << " imports " << (*it)[1].str());
      CHECK(dashboard_asset("/" + (*it)[1].str()));
    }
  }
  CHECK(imports >= 3);
}

TEST_CASE("content types by extension", "[dashboard]") {
  CHECK(dashboard_content_type("/a.png") == "image/png");
  CHECK(dashboard_content_type("/a.svg") == "image/svg+xml");
  CHECK(dashboard_content_type("/a.bin") == "application/octet-stream");
  CHECK(dashboard_content_type("/html") == "application/octet-stream");
}
