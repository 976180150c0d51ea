#include "protocol/message.h"

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

json result_or_throw(const json& reply) {
  if (reply.value("ok", false)) return reply.value("result", json::object());
  const json err = reply.value("error", json::object());
  const auto code = error_code_from_string(err.value("code", "internal"));
  throw Error(code.value_or(ErrorCode::kInternal), err.value("message", "request failed"));
}

}  // namespace lpd::protocol
