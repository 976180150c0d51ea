#include "daemon/core/event_bus.h"

#include <algorithm>
#include <chrono>

#include "daemon/core/peer.h"
#include "protocol/error.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

nlohmann::json Event::with_envelope(nlohmann::json view) const {
  nlohmann::json out = view.is_object() ? std::move(view) : nlohmann::json{{"value", std::move(view)}};
  out["seq"] = seq;
  out["time"] = time;
  if (!run_id.empty() && !out.contains("run_id")) out["run_id"] = run_id;
  return out;
}

const nlohmann::json& Event::data() const {
  if (!data_) {
    // Only lpd's own encoding gets here (set_data_text): it always parses.
    data_ = data_text_ ? nlohmann::json::parse(*data_text_, nullptr, /*allow_exceptions=*/false) : nlohmann::json();
  }
  return *data_;
}

void Event::set_data(nlohmann::json value) {
  data_ = std::move(value);
  data_text_.reset();
  plain_text_ = false;
}

void Event::set_data_text(std::string object_text) {
  data_text_ = std::move(object_text);
  data_.reset();
  plain_text_ = true;
}

const std::string& Event::data_text() const {
  if (!data_text_) data_text_ = data().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return *data_text_;
}

bool Event::data_is_plain_object() const {
  if (plain_text_) return true;
  const auto& d = data();
  return d.is_object() && !d.contains("event") && !d.contains("seq") && !d.contains("time") && !d.contains("run_id");
}

bool EventFilter::matches(std::string_view run, std::string_view type) const {
  if (!run_id.empty() && run != run_id) return false;
  if (prefixes.empty()) return true;
  // Only the prefixes of `type` can match: a few set lookups, however many
  // prefixes the filter holds.
  const std::string_view view = type;
  for (std::size_t n = 0; n <= view.size(); ++n)
    if (prefixes.count(view.substr(0, n))) return true;
  return false;
}

EventFilter EventFilter::checked(std::string run_id, const std::vector<std::string>& types) {
  if (types.size() > kMaxTypes)
    throw Error(ErrorCode::kLimitExceeded, "an event filter may list at most " + std::to_string(kMaxTypes) +
                                               " types; this one lists " + std::to_string(types.size()));
  if (run_id.size() > kMaxFilterBytes)
    throw Error(ErrorCode::kLimitExceeded,
                "an event filter's run_id may be at most " + std::to_string(kMaxFilterBytes) + " bytes");
  EventFilter filter;
  filter.run_id = std::move(run_id);
  for (const auto& type : types) {
    if (type.size() > kMaxFilterBytes)
      throw Error(ErrorCode::kLimitExceeded,
                  "an event type filter may be at most " + std::to_string(kMaxFilterBytes) + " bytes");
    filter.prefixes.insert(type);
  }
  // "" is a prefix of every type: the filter takes all of them.
  if (filter.prefixes.count("")) filter.prefixes.clear();
  return filter;
}

std::uint64_t EventBus::subscribe(Subscriber subscriber, std::uint64_t session) {
  return subscribe(EventFilter{}, std::move(subscriber), session);
}

std::uint64_t EventBus::subscribe(EventFilter filter, Subscriber subscriber, std::uint64_t session) {
  if (session != 0 && subscriptions_of(session) >= EventFilter::kMaxSubscriptionsPerSession)
    throw Error(ErrorCode::kLimitExceeded, "a connection may hold at most " +
                                               std::to_string(EventFilter::kMaxSubscriptionsPerSession) +
                                               " event subscriptions");
  const auto token = next_token_++;
  forget_matches();
  if (filter.prefixes.empty()) {
    index_[{filter.run_id, ""}].insert(token);
  } else {
    for (const auto& prefix : filter.prefixes) index_[{filter.run_id, prefix}].insert(token);
  }
  subscribers_.emplace(token, Subscription{std::move(subscriber), session, std::move(filter)});
  if (session != 0) ++per_session_[session];
  return token;
}

void EventBus::unsubscribe(std::uint64_t token) {
  auto it = subscribers_.find(token);
  if (it == subscribers_.end()) return;
  forget_matches();
  const EventFilter& filter = it->second.filter;
  auto unlist = [&](const std::string& prefix) {
    auto entry = index_.find(IndexKey{filter.run_id, prefix});
    if (entry == index_.end()) return;
    entry->second.erase(token);
    if (entry->second.empty()) index_.erase(entry);
  };
  if (filter.prefixes.empty()) unlist("");
  for (const auto& prefix : filter.prefixes) unlist(prefix);
  if (const auto session = it->second.session; session != 0) {
    auto count = per_session_.find(session);
    if (count != per_session_.end() && --count->second == 0) per_session_.erase(count);
  }
  subscribers_.erase(it);
}

void EventBus::peer_gone(const Peer& peer) {
  const std::uint64_t session = peer.session_id;
  if (session == 0) return;
  std::vector<std::uint64_t> tokens;
  for (const auto& [token, subscription] : subscribers_)
    if (subscription.session == session) tokens.push_back(token);
  for (auto token : tokens) unsubscribe(token);
}

std::size_t EventBus::subscriptions_of(std::uint64_t session) const {
  auto it = per_session_.find(session);
  return it == per_session_.end() ? 0 : it->second;
}

bool EventBus::matches(std::uint64_t token, const Event& e) const {
  auto it = subscribers_.find(token);
  return it != subscribers_.end() && it->second.filter.matches(e);
}

const Event* EventBus::find(std::uint64_t seq) const {
  if (history_.empty() || seq < history_.front().seq || seq > history_.back().seq) return nullptr;
  return &history_[seq - history_.front().seq];
}

EventBus::Tokens EventBus::matching(const Event& e) const {
  for (const auto& slot : memo_)
    if (slot && slot->type == e.type && slot->run_id == e.run_id) return slot->tokens;
  Tokens tokens;
  const std::string_view type = e.type;
  auto collect = [&](std::string_view run) {
    for (std::size_t n = 0; n <= type.size(); ++n) {
      auto entry = index_.find(IndexView{run, type.substr(0, n)});
      if (entry != index_.end()) tokens.insert(tokens.end(), entry->second.begin(), entry->second.end());
    }
  };
  collect("");
  if (!e.run_id.empty()) collect(e.run_id);
  // Subscription order, each once (a filter may list "pause." and "pause.c").
  std::sort(tokens.begin(), tokens.end());
  tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
  memo_[memo_next_] = MatchMemo{e.run_id, e.type, tokens};
  memo_next_ = (memo_next_ + 1) % kMemoSlots;
  return tokens;
}

void EventBus::continue_seqs(std::uint64_t next, std::function<std::uint64_t(std::uint64_t)> reserve) {
  next_seq_ = std::max<std::uint64_t>(next, 1);
  reserve_ = std::move(reserve);
  seq_limit_ = reserve_ ? next_seq_ : UINT64_MAX;
}

namespace {
Event event_of(std::string type, std::string run_id, uid_t owner) {
  Event event;
  event.type = std::move(type);
  event.run_id = std::move(run_id);
  event.owner = owner;
  return event;
}
}  // namespace

const Event& EventBus::publish(std::string type, nlohmann::json data, std::string run_id, uid_t owner) {
  Event event = event_of(std::move(type), std::move(run_id), owner);
  event.set_data(std::move(data));
  return deliver(std::move(event));
}

const Event& EventBus::publish_text(std::string type, std::string data_object_text, std::string run_id, uid_t owner) {
  Event event = event_of(std::move(type), std::move(run_id), owner);
  event.set_data_text(std::move(data_object_text));
  return deliver(std::move(event));
}

const Event& EventBus::deliver(Event event) {
  if (next_seq_ >= seq_limit_) seq_limit_ = reserve_(next_seq_);
  event.seq = next_seq_++;
  // Whole microseconds: written in fixed notation without a shortest-form
  // search (append_json_number), twice per event.
  event.time = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count()) /
               1e6;
  history_.push_back(std::move(event));
  // Oldest first, never one still being published (kept_bytes_ 0: this one,
  // or one whose subscriber published this).
  while (history_.size() > kHistory ||
         (history_bytes_ > kHistoryBytes && history_.size() > 1 && history_.front().kept_bytes_ != 0)) {
    history_bytes_ -= std::min(history_bytes_, history_.front().kept_bytes_);
    history_.pop_front();
  }
  Event& published = history_.back();
  // A subscriber may unsubscribe (or subscribe) while being called: take
  // the tokens first and look each up again.
  for (auto token : matching(published)) {
    auto it = subscribers_.find(token);
    if (it != subscribers_.end()) it->second.callback(published);
  }
  // The history keeps 10,000 events in one form, not two: the tree when
  // someone built it, else the text (smaller than a tree).
  const std::size_t text_bytes = published.data_text_ ? published.data_text_->size() : 0;
  if (published.data_) published.data_text_.reset();
  // A tree takes about three times its text.
  published.kept_bytes_ = sizeof(Event) + published.type.size() + published.run_id.size() +
                          (published.data_ ? 3 * text_bytes : text_bytes);
  history_bytes_ += published.kept_bytes_;
  return published;
}

}  // namespace lpd::daemon
