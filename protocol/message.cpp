#include "protocol/message.h"

#include "protocol/limits.h"

namespace lpd::protocol {
namespace {

bool valid_id(const json& id) {
  return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

std::string line_of(const json& object) {
  // Invalid UTF-8 in a peer's string must not throw while we build the reply.
  std::string out = object.dump(-1, ' ', false, json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

}  // namespace

Message parse_message(std::string_view line) {
  json body = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded())
    throw Error(ErrorCode::kBadRequest, "message is not valid JSON");
  if (!body.is_object())
    throw Error(ErrorCode::kBadRequest,
                std::string("message must be a JSON object, got ") + body.type_name());

  if (body.contains("event")) {
    if (!body["event"].is_string())
      throw Error(ErrorCode::kBadRequest, "\"event\" must be a string");
    return {Kind::kPush, std::move(body)};
  }
  if (body.contains("ok")) {
    if (!body["ok"].is_boolean()) throw Error(ErrorCode::kBadRequest, "\"ok\" must be a boolean");
    if (!body.contains("id")) throw Error(ErrorCode::kBadRequest, "reply has no \"id\"");
    return {Kind::kReply, std::move(body)};
  }
  if (!body.contains("op")) throw Error(ErrorCode::kBadRequest, "message has no \"op\"");
  if (!body["op"].is_string() || body["op"].get_ref<const std::string&>().empty())
    throw Error(ErrorCode::kBadRequest, "\"op\" must be a non-empty string");
  if (!body.contains("id")) return {Kind::kNotification, std::move(body)};
  if (!valid_id(body["id"]))
    throw Error(ErrorCode::kBadRequest, "\"id\" must be an integer or a string");
  return {Kind::kRequest, std::move(body)};
}

std::string encode_request(const json& id, std::string_view op, json fields) {
  if (!fields.is_object()) fields = json::object();
  fields["id"] = id;
  fields["op"] = op;
  return line_of(fields);
}

std::string encode_notification(std::string_view op, json fields) {
  if (!fields.is_object()) fields = json::object();
  fields["op"] = op;
  return line_of(fields);
}

std::string encode_reply_ok(const json& id, json result) {
  return line_of({{"id", id}, {"ok", true}, {"result", std::move(result)}});
}

std::string encode_reply_error(const json& id, ErrorCode code, std::string_view message) {
  return line_of({{"id", id},
                  {"ok", false},
                  {"error", {{"code", to_string(code)}, {"message", message}}}});
}

std::string encode_push(std::string_view event, json data) {
  return line_of({{"event", event}, {"data", std::move(data)}});
}

std::string within_line_limit(std::string line) {
  const std::size_t length = !line.empty() && line.back() == '\n' ? line.size() - 1 : line.size();
  if (length <= kMaxLineBytes) return line;
  // Which message it was, read off the line itself (a rare path: a parse is fine).
  const json message = json::parse(line, nullptr, false);
  const std::string size = std::to_string(length) + " bytes, over the protocol's " +
                           std::to_string(kMaxLineBytes) + "-byte line limit";
  if (message.is_object() && message.contains("id") && message.contains("ok"))
    return encode_reply_error(message["id"], ErrorCode::kTooLarge,
                              "lpd's reply would have been " + size + "; it was not sent (a bug in lpd)");
  std::string what = "a message";
  if (message.is_object() && message.contains("event") && message["event"].is_string())
    what = "a " + message["event"].get<std::string>() + " push";
  return encode_reply_error(nullptr, ErrorCode::kTooLarge,
                            "lpd dropped " + what + " of " + size + " (a bug in lpd)");
}

json result_or_throw(const json& reply) {
  // The reply came from outside: any member may be missing or of another
  // type, and that must end as an Error, never as a json::type_error.
  auto member = [&](const json& object, const char* key) -> const json* {
    const auto it = object.find(key);  // end() when `object` is not an object
    return it == object.end() ? nullptr : &*it;
  };
  if (const json* ok = member(reply, "ok"); ok && ok->is_boolean() && ok->get<bool>()) {
    const json* result = member(reply, "result");
    return result ? *result : json::object();
  }
  std::optional<ErrorCode> code;
  std::string message = "request failed";
  if (const json* err = member(reply, "error")) {
    if (const json* c = member(*err, "code"); c && c->is_string()) code = error_code_from_string(c->get<std::string>());
    if (const json* m = member(*err, "message"); m && m->is_string()) message = m->get<std::string>();
  }
  throw Error(code.value_or(ErrorCode::kInternal), message);
}

}  // namespace lpd::protocol
