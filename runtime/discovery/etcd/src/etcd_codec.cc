#include "etcd_codec.h"

#include <charconv>
#include <limits>

#include <nlohmann/json.hpp>

namespace fulcrum::etcd {
namespace {

using nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

Status Invalid(const std::string& why) { return Status::Error(StatusCode::kInvalidArgument, why); }

// int64 fields: the gateway writes strings; accept numbers too. Absent: 0.
StatusOr<int64_t> Int64Field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size()) return v;
  }
  return Invalid(std::string("field '") + name + "' is not an int64");
}

StatusOr<json> ParseObject(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Invalid("not a JSON object");
  return j;
}

StatusOr<KeyValue> ParseKeyValue(const json& j) {
  if (!j.is_object()) return Invalid("kv is not an object");
  KeyValue kv;
  for (auto [field, out] : {std::pair{"key", &kv.key}, std::pair{"value", &kv.value}}) {
    auto it = j.find(field);
    if (it == j.end()) continue;  // an empty value is left out
    if (!it->is_string()) return Invalid(std::string("kv ") + field + " is not a string");
    StatusOr<std::string> decoded = Base64Decode(it->get_ref<const std::string&>());
    if (!decoded.ok()) return decoded.status();
    *out = std::move(decoded).value();
  }
  if (kv.key.empty()) return Invalid("kv without a key");
  for (auto [field, out] :
       {std::pair{"mod_revision", &kv.mod_revision},
        std::pair{"create_revision", &kv.create_revision}, std::pair{"lease", &kv.lease}}) {
    StatusOr<int64_t> v = Int64Field(j, field);
    if (!v.ok()) return v.status();
    *out = *v;
  }
  return kv;
}

StatusOr<int64_t> HeaderRevision(const json& j) {
  auto header = j.find("header");
  if (header == j.end() || !header->is_object()) return int64_t{0};
  return Int64Field(*header, "revision");
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint32_t(uint8_t(bytes[i + 2]));
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (const size_t left = bytes.size() - i; left > 0) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (left == 2) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Invalid("base64 length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    uint32_t n = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        ++pad;
        n <<= 6;
        continue;
      }
      const int v = Base64Value(c);
      if (v < 0 || pad > 0) return Invalid("bad base64");
      n = (n << 6) | uint32_t(v);
    }
    out += char((n >> 16) & 0xff);
    if (pad < 2) out += char((n >> 8) & 0xff);
    if (pad < 1) out += char(n & 0xff);
  }
  return out;
}

std::string ServicePrefix(const std::string& prefix, const std::string& service) {
  return prefix + "/services/" + service + "/";
}

std::string InstanceKey(const std::string& prefix, const std::string& service,
                        const std::string& host_port) {
  return ServicePrefix(prefix, service) + host_port;
}

std::string LeaderKey(const std::string& prefix, const std::string& service,
                      const std::string& group) {
  return ServicePrefix(prefix, service) + "~leader/" + group;
}

std::string LeaderKeyGroup(std::string_view key) {
  constexpr std::string_view kMarker = "/~leader/";
  const size_t at = key.rfind(kMarker);
  if (at == std::string_view::npos) return "";
  std::string_view group = key.substr(at + kMarker.size());
  if (group.find('/') != std::string_view::npos) return "";
  return std::string(group);
}

std::string CandidatesPrefix(const std::string& prefix, const std::string& service,
                             const std::string& group) {
  return prefix + "/groups/" + service + "/" + group + "/";
}

std::string EncodeLeader(const LeaderValue& leader) {
  return json{{"address", leader.address}, {"incarnation", leader.incarnation}}.dump();
}

StatusOr<LeaderValue> DecodeLeader(std::string_view value) {
  StatusOr<json> parsed = ParseObject(value);
  if (!parsed.ok()) return Invalid("leader value is not a JSON object");
  LeaderValue out;
  auto address = parsed->find("address");
  if (address == parsed->end() || !address->is_string() ||
      address->get_ref<const std::string&>().find(':') == std::string::npos) {
    return Invalid("leader value has no host:port address");
  }
  out.address = address->get<std::string>();
  if (auto inc = parsed->find("incarnation"); inc != parsed->end()) {
    if (!inc->is_number_unsigned()) return Invalid("incarnation is not a non-negative integer");
    out.incarnation = inc->get<uint64_t>();
  }
  return out;
}

std::string EncodeCandidate(const CandidateValue& candidate) {
  return json{{"position", candidate.position},
              {"priority", candidate.priority},
              {"incarnation", candidate.incarnation}}
      .dump();
}

StatusOr<CandidateValue> DecodeCandidate(std::string_view value) {
  StatusOr<json> parsed = ParseObject(value);
  if (!parsed.ok()) return Invalid("candidate value is not a JSON object");
  CandidateValue out;
  auto position = parsed->find("position");
  if (position == parsed->end() || !position->is_number_integer()) {
    return Invalid("candidate value has no integer position");
  }
  out.position = position->get<int64_t>();
  if (auto p = parsed->find("priority"); p != parsed->end()) {
    if (!p->is_number_integer() || p->get<int64_t>() < std::numeric_limits<int32_t>::min() ||
        p->get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Invalid("priority is not a 32-bit integer");
    }
    out.priority = static_cast<int32_t>(p->get<int64_t>());
  }
  if (auto inc = parsed->find("incarnation"); inc != parsed->end()) {
    if (!inc->is_number_unsigned()) return Invalid("incarnation is not a non-negative integer");
    out.incarnation = inc->get<uint64_t>();
  }
  return out;
}

std::string PrefixRangeEnd(std::string key) {
  while (!key.empty()) {
    if (uint8_t(key.back()) < 0xff) {
      key.back() = char(uint8_t(key.back()) + 1);
      return key;
    }
    key.pop_back();
  }
  return std::string(1, '\0');  // etcd: every key >= key
}

std::string EncodeInstance(const ServiceInstance& instance, uint64_t incarnation) {
  json j = {{"host", instance.host},
            {"port", instance.port},
            {"weight", instance.weight},
            {"zone", instance.zone},
            {"metadata", instance.metadata}};
  if (incarnation != 0) j["incarnation"] = incarnation;
  if (!instance.group.empty()) j["group"] = instance.group;
  return j.dump();
}

StatusOr<Endpoint> DecodeEndpoint(std::string_view value) {
  StatusOr<json> parsed = ParseObject(value);
  if (!parsed.ok()) return Invalid("value is not a JSON object");
  const json& j = *parsed;
  Endpoint e;
  auto host = j.find("host");
  if (host == j.end() || !host->is_string() || host->get_ref<const std::string&>().empty()) {
    return Invalid("value has no host");
  }
  e.host = host->get<std::string>();
  auto port = j.find("port");
  if (port == j.end() || !port->is_number_integer() || port->get<int64_t>() < 1 ||
      port->get<int64_t>() > 65535) {
    return Invalid("value has no port in 1..65535");
  }
  e.port = static_cast<uint16_t>(port->get<int64_t>());
  if (auto w = j.find("weight"); w != j.end()) {
    if (!w->is_number_integer() || w->get<int64_t>() < 0 ||
        w->get<int64_t>() > std::numeric_limits<uint32_t>::max()) {
      return Invalid("weight is not a non-negative integer");
    }
    e.weight = static_cast<uint32_t>(w->get<int64_t>());
  }
  if (auto z = j.find("zone"); z != j.end()) {
    if (!z->is_string()) return Invalid("zone is not a string");
    e.zone = z->get<std::string>();
  }
  if (auto inc = j.find("incarnation"); inc != j.end()) {
    if (!inc->is_number_unsigned()) return Invalid("incarnation is not a non-negative integer");
    e.incarnation = inc->get<uint64_t>();
  }
  if (auto g = j.find("group"); g != j.end()) {
    if (!g->is_string()) return Invalid("group is not a string");
    e.group = g->get<std::string>();
  }
  if (auto m = j.find("metadata"); m != j.end() && !m->is_null()) {
    if (!m->is_object()) return Invalid("metadata is not an object");
    for (const auto& [k, v] : m->items()) {
      if (!v.is_string()) return Invalid("metadata '" + k + "' is not a string");
      e.tags[k] = v.get<std::string>();
    }
  }
  return e;
}

StatusOr<RangeResult> ParseRangeResponse(std::string_view text) {
  StatusOr<json> parsed = ParseObject(text);
  if (!parsed.ok()) return Invalid("range answer is not a JSON object");
  const json& j = *parsed;
  RangeResult r;
  StatusOr<int64_t> rev = HeaderRevision(j);
  if (!rev.ok()) return rev.status();
  if (*rev <= 0) return Invalid("range answer has no header.revision");
  r.revision = *rev;
  if (auto kvs = j.find("kvs"); kvs != j.end()) {
    if (!kvs->is_array()) return Invalid("range answer's kvs is not an array");
    for (const json& item : *kvs) {
      StatusOr<KeyValue> kv = ParseKeyValue(item);
      if (!kv.ok()) return kv.status();
      r.kvs.push_back(std::move(kv).value());
    }
  }
  return r;
}

StatusOr<TxnResult> ParseTxnResponse(std::string_view text) {
  StatusOr<json> parsed = ParseObject(text);
  if (!parsed.ok()) return Invalid("txn answer is not a JSON object");
  const json& j = *parsed;
  TxnResult r;
  StatusOr<int64_t> rev = HeaderRevision(j);
  if (!rev.ok()) return rev.status();
  if (*rev <= 0) return Invalid("txn answer has no header.revision");
  r.revision = *rev;
  if (auto ok = j.find("succeeded"); ok != j.end()) {
    if (!ok->is_boolean()) return Invalid("txn answer's succeeded is not a boolean");
    r.succeeded = ok->get<bool>();
  }
  if (auto responses = j.find("responses"); responses != j.end()) {
    if (!responses->is_array()) return Invalid("txn answer's responses is not an array");
    for (const json& item : *responses) {
      if (!item.is_object()) return Invalid("txn response is not an object");
      auto range = item.find("response_range");
      if (range == item.end()) continue;
      if (!range->is_object()) return Invalid("txn response_range is not an object");
      std::vector<KeyValue> kvs;
      if (auto list = range->find("kvs"); list != range->end()) {
        if (!list->is_array()) return Invalid("txn range's kvs is not an array");
        for (const json& kv_json : *list) {
          StatusOr<KeyValue> kv = ParseKeyValue(kv_json);
          if (!kv.ok()) return kv.status();
          kvs.push_back(std::move(kv).value());
        }
      }
      r.ranges.push_back(std::move(kvs));
    }
  }
  return r;
}

StatusOr<WatchResponse> ParseWatchResponse(std::string_view text) {
  StatusOr<json> parsed = ParseObject(text);
  if (!parsed.ok()) return Invalid("watch message is not a JSON object");
  const json& outer = *parsed;
  if (auto err = outer.find("error"); err != outer.end()) {
    return Status::Error(StatusCode::kUnavailable, "etcd watch error: " + err->dump());
  }
  auto result = outer.find("result");
  if (result == outer.end() || !result->is_object()) {
    return Invalid("watch message has no result");
  }
  const json& j = *result;
  WatchResponse w;
  StatusOr<int64_t> rev = HeaderRevision(j);
  if (!rev.ok()) return rev.status();
  w.revision = *rev;
  w.created = j.value("created", false);
  w.canceled = j.value("canceled", false);
  StatusOr<int64_t> compact = Int64Field(j, "compact_revision");
  if (!compact.ok()) return compact.status();
  w.compact_revision = *compact;
  if (auto reason = j.find("cancel_reason"); reason != j.end() && reason->is_string()) {
    w.cancel_reason = reason->get<std::string>();
  }
  if (auto events = j.find("events"); events != j.end()) {
    if (!events->is_array()) return Invalid("watch events is not an array");
    for (const json& ev : *events) {
      if (!ev.is_object()) return Invalid("watch event is not an object");
      WatchEvent e;
      const std::string type = ev.value("type", std::string("PUT"));
      if (type != "PUT" && type != "DELETE") return Invalid("watch event type '" + type + "'");
      e.deleted = type == "DELETE";
      auto kv = ev.find("kv");
      if (kv == ev.end()) return Invalid("watch event without kv");
      StatusOr<KeyValue> parsed_kv = ParseKeyValue(*kv);
      if (!parsed_kv.ok()) return parsed_kv.status();
      e.kv = std::move(parsed_kv).value();
      w.events.push_back(std::move(e));
    }
  }
  return w;
}

StatusOr<LeaseResult> ParseLeaseResponse(std::string_view text) {
  StatusOr<json> parsed = ParseObject(text);
  if (!parsed.ok()) return Invalid("lease answer is not a JSON object");
  const json* j = &*parsed;
  if (auto result = j->find("result"); result != j->end() && result->is_object()) j = &*result;
  if (j->contains("error")) return Status::Error(StatusCode::kUnavailable, ErrorMessage(text));
  LeaseResult r;
  StatusOr<int64_t> id = Int64Field(*j, "ID");
  if (!id.ok()) return id.status();
  StatusOr<int64_t> ttl = Int64Field(*j, "TTL");
  if (!ttl.ok()) return ttl.status();
  r.id = *id;
  r.ttl_s = *ttl;
  return r;
}

std::string ErrorMessage(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    const json* e = &j;
    if (auto inner = j.find("error"); inner != j.end() && inner->is_object()) e = &*inner;
    for (const char* field : {"message", "error"}) {
      if (auto m = e->find(field); m != e->end() && m->is_string()) return m->get<std::string>();
    }
  }
  return std::string(body.substr(0, 200));
}

std::vector<std::string> JsonObjectSplitter::Feed(std::string_view bytes) {
  std::vector<std::string> done;
  for (const char c : bytes) {
    if (depth_ == 0) {
      if (c != '{') continue;  // separators between objects
      current_.clear();
    }
    current_ += c;
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        done.push_back(std::move(current_));
        current_.clear();
      }
    }
  }
  return done;
}

}  // namespace fulcrum::etcd
