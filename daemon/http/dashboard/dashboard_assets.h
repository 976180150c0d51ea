// The dashboard's static files, built into lpd: what GET / serves.
#pragma once

#include <optional>
#include <string_view>

namespace lpd::daemon::http {

/// A built-in file of the dashboard: its Content-Type and its bytes (static storage).
struct DashboardAsset {
  std::string_view content_type;
  std::string_view body;
};

/// The built-in dashboard file at `path` ("/" means "/index.html"); nullopt if none.
/// `path` is the URL path without query; only exact names match (no "..",
/// no directories, no case folding), so nothing outside the embedded set is reachable.
std::optional<DashboardAsset> dashboard_asset(std::string_view path);

}  // namespace lpd::daemon::http
