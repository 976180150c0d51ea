#include "protocol/flat_message.h"

namespace lpd::protocol {
namespace {

using json = nlohmann::json;

/// Collects the members of one object of scalars; refuses (returns false,
/// which stops the parse) at the first nested object or array.
class FlatCollector {
 public:
  explicit FlatCollector(FlatMessage& out) : out_(out) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return value(json(v)); }
  bool string(json::string_t& v) { return value(json(std::move(v))); }
  bool binary(json::binary_t&) { return false; }
  bool start_object(std::size_t) { return !std::exchange(in_object_, true); }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return false; }
  bool end_array() { return false; }
  bool key(json::string_t& name) {
    out_.fields.emplace_back(std::move(name), json());
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  bool value(json v) {
    if (!in_object_ || out_.fields.empty()) return false;  // a scalar document, not an object
    out_.fields.back().second = std::move(v);
    return true;
  }
  FlatMessage& out_;
  bool in_object_ = false;
};

}  // namespace

const nlohmann::json* FlatMessage::find(std::string_view name) const {
  for (auto it = fields.rbegin(); it != fields.rend(); ++it)
    if (it->first == name) return &it->second;
  return nullptr;
}

std::optional<FlatMessage> parse_flat_message(std::string_view line) {
  FlatMessage message;
  message.fields.reserve(8);
  FlatCollector collector(message);
  if (!json::sax_parse(line, &collector, json::input_format_t::json, /*strict=*/true)) return std::nullopt;
  if (message.find("id") || message.find("event") || message.find("ok")) return std::nullopt;
  const json* op = message.find("op");
  if (!op || !op->is_string() || op->get_ref<const std::string&>().empty()) return std::nullopt;
  message.op = op->get<std::string>();
  std::erase_if(message.fields, [](const auto& field) { return field.first == "op"; });
  return message;
}

}  // namespace lpd::protocol
