// Looks up the dashboard's files embedded by embed_files.cmake.
#include "daemon/http/dashboard/dashboard_assets.h"

#include "daemon/http/dashboard/embedded_file.h"

namespace lpd::daemon::http {

std::string_view dashboard_content_type(std::string_view path) {
  struct Type {
    std::string_view extension, content_type;
  };
  // Text types say UTF-8: the files are, and a browser must not guess.
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
      {".svg", "image/svg+xml"},
  };
  for (const auto& type : kTypes)
    if (path.ends_with(type.extension)) return type.content_type;
  return "application/octet-stream";
}

std::optional<DashboardAsset> dashboard_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (std::size_t i = 0; i < kEmbeddedFileCount; ++i) {
    const EmbeddedFile& file = kEmbeddedFiles[i];
    if (path != file.path) continue;
    return DashboardAsset{dashboard_content_type(path),
                          std::string_view(reinterpret_cast<const char*>(file.data), file.size)};
  }
  return std::nullopt;
}

}  // namespace lpd::daemon::http
