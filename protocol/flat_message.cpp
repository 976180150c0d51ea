#include "protocol/flat_message.h"

#include "protocol/json_text.h"
#include "protocol/utf8.h"

#include <charconv>
#include <cmath>

namespace lpd::protocol {
namespace {

using json = nlohmann::json;

/// Collects the members of one object of scalars and arrays of strings;
/// refuses (returns false, which stops the parse) at any other nesting.
class FlatCollector {
 public:
  explicit FlatCollector(FlatMessage& out) : out_(out) {}

  bool null() { return value(FlatValue{}); }
  bool boolean(bool v) {
    FlatValue f;
    f.kind = FlatValue::Kind::kBoolean;
    f.boolean = v;
    return value(std::move(f));
  }
  bool number_integer(json::number_integer_t v) {
    FlatValue f;
    f.kind = FlatValue::Kind::kInteger;
    f.integer = v;
    return value(std::move(f));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    FlatValue f;
    f.kind = FlatValue::Kind::kUnsigned;
    f.unsigned_integer = v;
    return value(std::move(f));
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    FlatValue f;
    f.kind = FlatValue::Kind::kFloat;
    f.number = v;
    return value(std::move(f));
  }
  bool string(json::string_t& v) {
    if (in_array_) {
      out_.fields.back().second.strings.push_back(std::move(v));
      return true;
    }
    FlatValue f;
    f.kind = FlatValue::Kind::kString;
    f.text = std::move(v);
    return value(std::move(f));
  }
  bool binary(json::binary_t&) { return false; }
  bool start_object(std::size_t) { return !std::exchange(in_object_, true); }
  bool end_object() { return true; }
  bool start_array(std::size_t) {
    // Only as a member's value, and not within another array.
    if (in_array_ || !in_object_ || out_.fields.empty()) return false;
    FlatValue& value = out_.fields.back().second;
    value.kind = FlatValue::Kind::kStrings;
    in_array_ = true;
    return true;
  }
  bool end_array() { return std::exchange(in_array_, false); }
  bool key(json::string_t& name) {
    out_.fields.emplace_back(std::move(name), FlatValue());
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  bool value(FlatValue v) {
    // A scalar document (not an object), or an array item that is not a string.
    if (!in_object_ || in_array_ || out_.fields.empty()) return false;
    out_.fields.back().second = std::move(v);
    return true;
  }
  FlatMessage& out_;
  bool in_object_ = false;
  bool in_array_ = false;
};

/// The fast path: one pass over the line, no JSON library. It knows the
/// shapes the shims write (ASCII or UTF-8 strings with the usual escapes,
/// integers, plain decimal numbers, literals) and answers only where it is
/// sure; anything else it leaves to the SAX parser below, which also has
/// the last word on what is invalid. Never wrong, at worst slow.
class FastScanner {
 public:
  /// `message`: the line is a message, whose "op" is its own field
  /// (FlatMessage::op) and which may not have "id", "event" or "ok";
  /// otherwise every member is a field like the others.
  FastScanner(std::string_view text, bool message) : text_(text), message_(message) {}

  /// True when `out` holds the whole line's members; false when unsure.
  bool object(FlatMessage& out, bool& refused) {
    skip_space();
    if (!take('{')) return false;
    skip_space();
    if (take('}')) return finished();
    std::string key;
    for (;;) {
      key.clear();
      if (!take('"') || !string(key)) return false;
      skip_space();
      if (!take(':')) return false;
      skip_space();
      if (message_ && key == std::string_view("op")) {
        FlatValue op;
        if (!value(op)) return false;
        has_op_ = op.kind == FlatValue::Kind::kString;
        if (has_op_) out.op = std::move(op.text);
      } else {
        // A request, push or reply is never flat; the rest of the line is
        // still checked, so that "refused" only ever follows a valid line.
        if (message_ &&
            (key == std::string_view("id") || key == std::string_view("event") || key == std::string_view("ok")))
          refused = true;
        out.fields.emplace_back(std::move(key), FlatValue());
        if (!value(out.fields.back().second)) return false;
      }
      skip_space();
      if (take('}')) return finished();
      if (!take(',')) return false;
      skip_space();
    }
  }
  bool has_op() const { return has_op_; }

 private:
  bool finished() {
    skip_space();
    return at_ == text_.size();
  }
  bool take(char c) {
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  bool value(FlatValue& out) {
    if (at_ >= text_.size()) return false;
    const char c = text_[at_];
    if (c == '"') {
      ++at_;
      out.kind = FlatValue::Kind::kString;
      return string(out.text);
    }
    if (c == '[') {
      ++at_;
      out.kind = FlatValue::Kind::kStrings;
      return strings(out.strings);
    }
    if (c == 't' || c == 'f' || c == 'n') {
      if (literal("true") || literal("false")) {
        out.kind = FlatValue::Kind::kBoolean;
        out.boolean = c == 't';
      } else if (literal("null")) {
        out.kind = FlatValue::Kind::kNull;
      } else {
        return false;
      }
      return true;
    }
    return number(out);
  }

  /// JSON's number grammar exactly; the value as nlohmann's parser keeps it
  /// (unsigned when not negative, signed when negative, else a double).
  bool number(FlatValue& out) {
    // A shorter number than the text holds ("01", "1.", "1e5x") leaves the
    // next byte to the caller, who finds no ',' or '}' there: unsure.
    const std::size_t start = at_;
    const std::size_t length = json_number_prefix(text_.substr(at_));
    if (length == 0) return false;
    at_ += length;
    const std::string_view spelled = text_.substr(start, length);
    const bool negative = spelled.front() == '-';
    const bool integral = spelled.find_first_of(".eE") == std::string_view::npos;
    const char* begin = text_.data() + start;
    const char* end = text_.data() + at_;
    if (integral && negative) {
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(begin, end, v);
      if (ec != std::errc() || ptr != end) return false;  // out of range: a double, left to the parser
      out.kind = FlatValue::Kind::kInteger;
      out.integer = v;
    } else if (integral) {
      std::uint64_t v = 0;
      const auto [ptr, ec] = std::from_chars(begin, end, v);
      if (ec != std::errc() || ptr != end) return false;
      out.kind = FlatValue::Kind::kUnsigned;
      out.unsigned_integer = v;
    } else {
      double v = 0;
      const auto [ptr, ec] = std::from_chars(begin, end, v);
      if (ec != std::errc() || ptr != end || !std::isfinite(v)) return false;
      out.kind = FlatValue::Kind::kFloat;
      out.number = v;
    }
    return true;
  }

  /// The rest of an array of strings after its '[', decoded into `out`.
  bool strings(std::vector<std::string>& out) {
    skip_space();
    if (take(']')) return true;
    for (;;) {
      if (!take('"')) return false;  // not a string: left to the SAX parser
      if (!string(out.emplace_back())) return false;
      skip_space();
      if (take(']')) return true;
      if (!take(',')) return false;
      skip_space();
    }
  }

  /// The rest of a string after its opening quote, decoded into `out`.
  bool string(std::string& out) {
    for (;;) {
      const std::size_t run = at_;
      at_ += plain_json_prefix(text_.substr(at_));
      out.append(text_.data() + run, at_ - run);
      if (at_ >= text_.size()) return false;
      const auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) return false;  // a raw control character: invalid
      if (c >= 0x80) {
        if (!utf8_sequence(out)) return false;
        continue;
      }
      if (!escape(out)) return false;
    }
  }

  /// One UTF-8 sequence as RFC 3629 allows it (what nlohmann's lexer accepts).
  bool utf8_sequence(std::string& out) {
    const std::size_t length = utf8_sequence_length(text_, at_);
    if (length == 0) return false;
    out.append(text_.data() + at_, length);
    at_ += length;
    return true;
  }

  bool hex4(unsigned& code) {
    if (text_.size() - at_ < 4) return false;
    code = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char h = text_[at_ + k];
      unsigned d;
      if (h >= '0' && h <= '9') d = static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') d = static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') d = static_cast<unsigned>(h - 'A' + 10);
      else return false;
      code = code * 16 + d;
    }
    at_ += 4;
    return true;
  }

  bool escape(std::string& out) {
    ++at_;  // the backslash
    if (at_ >= text_.size()) return false;
    const char e = text_[at_++];
    switch (e) {
      case '"': out.push_back('"'); return true;
      case '\\': out.push_back('\\'); return true;
      case '/': out.push_back('/'); return true;
      case 'b': out.push_back('\b'); return true;
      case 'f': out.push_back('\f'); return true;
      case 'n': out.push_back('\n'); return true;
      case 'r': out.push_back('\r'); return true;
      case 't': out.push_back('\t'); return true;
      case 'u': break;
      default: return false;
    }
    unsigned code = 0;
    if (!hex4(code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return false;  // a lone low surrogate
    if (code >= 0xD800 && code <= 0xDBFF) {
      unsigned second = 0;
      if (!literal("\\u") || !hex4(second) || second < 0xDC00 || second > 0xDFFF) return false;
      code = 0x10000 + ((code - 0xD800) << 10) + (second - 0xDC00);
    }
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
    return true;
  }

  std::string_view text_;
  std::size_t at_ = 0;
  bool has_op_ = false;
  bool message_;
};

}  // namespace

double FlatValue::as_double() const {
  switch (kind) {
    case Kind::kInteger: return static_cast<double>(integer);
    case Kind::kUnsigned: return static_cast<double>(unsigned_integer);
    case Kind::kFloat: return number;
    default: return 0;
  }
}

json FlatValue::to_json() const {
  switch (kind) {
    case Kind::kNull: return json(nullptr);
    case Kind::kBoolean: return json(boolean);
    case Kind::kInteger: return json(integer);
    case Kind::kUnsigned: return json(unsigned_integer);
    case Kind::kFloat: return json(number);
    case Kind::kString: return json(text);
    case Kind::kStrings: return json(strings);
  }
  return json(nullptr);
}

const FlatValue* FlatMessage::find(std::string_view name) const {
  for (auto it = fields.rbegin(); it != fields.rend(); ++it)
    if (it->first == name) return &it->second;
  return nullptr;
}

std::optional<FlatMessage> parse_flat_message(std::string_view line) {
  FlatMessage message;
  message.fields.reserve(8);
  {
    // Tens of thousands of records a run: the SAX parser's per-character
    // calls and a json value per member were a sixth of lpd's CPU per test.
    FastScanner fast(line, /*message=*/true);
    bool refused = false;
    if (fast.object(message, refused)) {
      if (refused || !fast.has_op() || message.op.empty()) return std::nullopt;
      return message;
    }
    message.op.clear();
    message.fields.clear();
  }
  FlatCollector collector(message);
  if (!json::sax_parse(line, &collector, json::input_format_t::json, /*strict=*/true)) return std::nullopt;
  if (message.find("id") || message.find("event") || message.find("ok")) return std::nullopt;
  const FlatValue* op = message.find("op");
  if (!op || op->kind != FlatValue::Kind::kString || op->text.empty()) return std::nullopt;
  message.op = op->text;
  std::erase_if(message.fields, [](const auto& field) { return field.first == "op"; });
  return message;
}

std::optional<std::vector<std::pair<std::string, FlatValue>>> parse_flat_object(std::string_view line) {
  FlatMessage members;
  {
    FastScanner fast(line, /*message=*/false);
    bool refused = false;
    if (fast.object(members, refused)) return std::move(members.fields);
    members.fields.clear();
  }
  FlatCollector collector(members);
  if (!json::sax_parse(line, &collector, json::input_format_t::json, /*strict=*/true)) return std::nullopt;
  return std::move(members.fields);
}

}  // namespace lpd::protocol
