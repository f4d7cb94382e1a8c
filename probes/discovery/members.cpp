#include "probes/discovery/members.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace ghostwatch::discovery {
namespace {

constexpr std::size_t kMaxLabel = 64;

bool label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == ':';
}

bool same_place(const Member& a, const Member& b) {
  return a.host == b.host && a.address == b.address && a.port == b.port && a.role == b.role;
}

// Patroni says "running" for a replica that is up, and "streaming" (3.0.4+) once it streams.
bool patroni_member_up(const std::string& state) { return state == "running" || state == "streaming"; }

Result<Member> patroni_member(const nlohmann::json& m, std::size_t i) {
  const std::string at = "member " + std::to_string(i + 1);
  if (!m.is_object()) return Error{at + ": not an object"};
  for (const char* key : {"name", "host"}) {
    if (!m.contains(key) || !m.at(key).is_string() || m.at(key).get<std::string>().empty()) {
      return Error{at + ": no " + key};
    }
  }
  if (!m.contains("port") || !m.at("port").is_number_integer()) return Error{at + ": no port"};
  Member out;
  out.name = label_value(m.at("name").get<std::string>());
  out.host = m.at("host").get<std::string>();
  out.port = m.at("port").get<int>();
  if (m.contains("role") && m.at("role").is_string()) out.role = m.at("role").get<std::string>();
  const std::string state = m.contains("state") && m.at("state").is_string() ? m.at("state").get<std::string>() : "";
  out.eligible = patroni_member_up(state);
  return out;
}

Result<Member> file_member(const YAML::Node& item, std::size_t i) {
  const std::string at = "item " + std::to_string(i + 1);
  if (!item.IsMap()) return Error{at + ": expected a map with name, host and port"};
  for (const char* key : {"name", "host"}) {
    if (!item[key] || !item[key].IsScalar() || item[key].Scalar().empty()) return Error{at + ": " + key + ": missing"};
  }
  if (!item["port"] || !item["port"].IsScalar()) return Error{at + ": port: missing"};
  Member out;
  out.name = label_value(item["name"].Scalar());
  out.host = item["host"].Scalar();
  const std::string port = item["port"].Scalar();
  try {
    std::size_t used = 0;
    out.port = std::stoi(port, &used);
    if (used != port.size() || out.port < 1 || out.port > 65535) throw std::out_of_range(port);
  } catch (const std::exception&) {
    return Error{at + ": port: expected 1-65535, got '" + port + "'"};
  }
  return out;
}

}  // namespace

std::string label_value(std::string_view raw) {
  std::string out;
  for (char c : raw.substr(0, kMaxLabel)) out += label_char(c) ? c : '_';
  return out.empty() ? "_" : out;
}

Result<std::vector<Member>> parse_patroni_cluster(std::string_view json) {
  const auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Error{"the answer is not JSON"};
  if (!doc.is_object() || !doc.contains("members") || !doc.at("members").is_array()) {
    return Error{"the answer has no members list"};
  }
  std::vector<Member> out;
  const auto& members = doc.at("members");
  for (std::size_t i = 0; i < members.size(); ++i) {
    auto m = patroni_member(members[i], i);
    if (!m) return m.error();
    out.push_back(std::move(m.value()));
  }
  return out;
}

Result<std::vector<Member>> parse_member_file(std::string_view text) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error{"line " + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
  if (!doc || doc.IsNull()) return std::vector<Member>{};
  if (!doc.IsSequence()) return Error{"expected a list of {name, host, port}"};
  std::vector<Member> out;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    auto m = file_member(doc[i], i);
    if (!m) return m.error();
    out.push_back(std::move(m.value()));
  }
  return out;
}

Status unique_names(const std::vector<Member>& members) {
  std::map<std::string, const Member*> seen;
  for (const Member& m : members) {
    auto [it, inserted] = seen.emplace(m.name, &m);
    if (!inserted) {
      return Error{"two members are named '" + m.name + "': " + it->second->host + ":" +
                   std::to_string(it->second->port) + " and " + m.host + ":" + std::to_string(m.port)};
    }
  }
  return ok_status();
}

namespace {

struct Placeholders {
  std::string host, address, port, name;
};

Result<std::string> substitute(std::string_view dsn_template, const Placeholders& with) {
  std::string out;
  std::size_t i = 0;
  while (i < dsn_template.size()) {
    const std::size_t open = dsn_template.find('{', i);
    if (open == std::string_view::npos) break;
    const std::size_t close = dsn_template.find('}', open);
    if (close == std::string_view::npos) return Error{"'{' without '}'"};
    out.append(dsn_template.substr(i, open - i));
    const std::string_view key = dsn_template.substr(open + 1, close - open - 1);
    if (key == "host") out += with.host;
    else if (key == "address") out += with.address;
    else if (key == "port") out += with.port;
    else if (key == "name") out += with.name;
    else return Error{"unknown placeholder {" + std::string(key) + "} (known: {host}, {address}, {port}, {name})"};
    i = close + 1;
  }
  out.append(dsn_template.substr(std::min(i, dsn_template.size())));
  return out;
}

std::string address_of(const Member& m) { return m.address.empty() ? m.host : m.address; }

bool is_uri(std::string_view dsn) { return dsn.find("://") != std::string_view::npos; }

}  // namespace

Result<std::string> render_dsn(std::string_view dsn_template, const Member& member) {
  const bool uri = dsn_template.rfind("mysql://", 0) == 0;
  auto bracketed = [uri](const std::string& host) {
    return uri && host.find(':') != std::string::npos ? "[" + host + "]" : host;
  };
  return substitute(dsn_template, {bracketed(member.host), bracketed(address_of(member)), std::to_string(member.port),
                                   member.name});
}

Result<std::string> render_writer_dsn(std::string_view dsn_template, const Member& leader,
                                      const std::vector<Member>& others) {
  if (is_uri(dsn_template)) return render_dsn(dsn_template, leader);
  std::string hosts = leader.host, addresses = address_of(leader), ports = std::to_string(leader.port);
  for (const Member& m : others) {
    if (m.name == leader.name) continue;
    hosts += "," + m.host;
    addresses += "," + address_of(m);
    ports += "," + std::to_string(m.port);
  }
  auto dsn = substitute(dsn_template, {hosts, addresses, ports, leader.name});
  if (!dsn) return dsn;
  if (dsn.value().find("target_session_attrs") == std::string::npos) dsn.value() += " target_session_attrs=read-write";
  return dsn;
}

MemberSet::MemberSet(int remove_after) : remove_after_(std::max(1, remove_after)) {}

MemberSet::Changes MemberSet::round(const std::vector<Member>& listed) {
  Changes changes;
  std::set<std::string> present;
  for (const Member& m : listed) {
    present.insert(m.name);
    auto it = known_.find(m.name);
    if (it == known_.end()) {
      if (!m.eligible) continue;
      known_.emplace(m.name, Known{m, 0});
      changes.added.push_back(m);
      continue;
    }
    it->second.missing = 0;
    if (!same_place(it->second.member, m)) changes.changed.push_back(m);
    it->second.member = m;
  }
  for (auto it = known_.begin(); it != known_.end();) {
    if (present.count(it->first) == 0 && ++it->second.missing >= remove_after_) {
      changes.removed.push_back(it->first);
      it = known_.erase(it);
    } else {
      ++it;
    }
  }
  return changes;
}

std::vector<Member> MemberSet::members() const {
  std::vector<Member> out;
  for (const auto& [name, known] : known_) out.push_back(known.member);
  return out;
}

}  // namespace ghostwatch::discovery
