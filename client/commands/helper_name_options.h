#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace lpd::client {

/// Adds the words that name one helper process to `app`: NAME (required;
/// the name in this project, or the full name SCOPE::NAME) into `name`, and
/// --scope (the project directory) into `scope`, as every lpctl command on
/// one helper takes them (logs, kill).
inline void add_helper_name_options(CLI::App& app, std::string& name, std::optional<std::string>& scope) {
  app.add_option("name", name, "Name of the process (in this project), or its full name SCOPE::NAME")->required();
  app.add_option("--scope", scope, "Project directory of the process (default: this project's)");
}

}  // namespace lpd::client
