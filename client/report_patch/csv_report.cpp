#include "client/report_patch/csv_report.h"

#include <cstdio>
#include <stdexcept>
#include <unordered_set>

namespace lpd::client::report_patch {
namespace {

std::string csv_field(const std::string& field, char delimiter) {
  if (field.find_first_of(std::string{delimiter, '"', '\r', '\n'}) == std::string::npos) return field;
  std::string out = "\"";
  for (char ch : field) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

char delimiter_of(std::string_view header_line) {
  for (char d : {',', ';', '\t', '|'})
    if (header_line.find(d) != std::string_view::npos) return d;
  return ',';
}

std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", seconds);
  return buf;
}

}  // namespace

std::vector<std::vector<std::string>> parse_csv(std::string_view text, char delimiter) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool in_quotes = false, field_started = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_quotes) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        in_quotes = false;
      } else {
        field += ch;
      }
      continue;
    }
    if (ch == '"' && !field_started) {
      in_quotes = field_started = true;
    } else if (ch == delimiter) {
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      record.push_back(std::move(field));
      field.clear();
      field_started = false;
      records.push_back(std::move(record));
      record.clear();
    } else {
      field += ch;
      field_started = true;
    }
  }
  if (field_started || !record.empty()) {
    record.push_back(std::move(field));
    records.push_back(std::move(record));
  }
  return records;
}

PatchResult patch_csv_report(const std::optional<std::string>& existing, const std::vector<CrashedTest>& crashed) {
  std::string text = existing.value_or("");
  std::string newline = "\r\n";
  if (text.empty()) text = std::string(kCsvDefaultHeader) + newline;
  const auto first_break = text.find('\n');
  const std::string_view header_line =
      std::string_view(text).substr(0, first_break == std::string::npos ? text.size() : first_break);
  if (first_break != std::string::npos && (first_break == 0 || text[first_break - 1] != '\r')) newline = "\n";
  const char delimiter = delimiter_of(header_line);
  const auto records = parse_csv(text, delimiter);
  if (records.empty()) throw std::runtime_error("not a pytest-csv report (no header line)");
  const auto& header = records.front();
  std::size_t id_column = header.size();
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == "id") id_column = i;
  if (id_column == header.size()) throw std::runtime_error("not a pytest-csv report (its header has no \"id\" column)");

  std::unordered_set<std::string> present;
  for (std::size_t r = 1; r < records.size(); ++r)
    if (id_column < records[r].size()) present.insert(records[r][id_column]);
  std::string rows;
  PatchResult result;
  for (const auto& c : crashed) {
    if (!present.insert(c.nodeid).second) continue;
    const NodeidParts parts = split_nodeid(c.nodeid);
    std::string line;
    for (std::size_t i = 0; i < header.size(); ++i) {
      const std::string& column = header[i];
      std::string value;
      if (column == "id") value = c.nodeid;
      else if (column == "module") value = parts.module;
      else if (column == "name") value = parts.name;
      else if (column == "file") value = parts.file;
      else if (column == "status") value = "failed";
      else if (column == "message") value = crash_text(c);
      else if (column == "duration") value = seconds_text(c.duration);
      if (i > 0) line += delimiter;
      line += csv_field(value, delimiter);
    }
    rows += line + newline;
    ++result.added;
  }
  if (result.added == 0 && existing) return result;
  if (!text.empty() && text.back() != '\n') text += newline;
  result.text = text + rows;
  return result;
}

}  // namespace lpd::client::report_patch
