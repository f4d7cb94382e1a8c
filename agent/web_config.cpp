#include "agent/web_config.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/yaml_cursor.h"
#include "common/base64.h"
#include "common/small_file.h"

namespace ghostwatch {
namespace {

const std::set<std::string>& exemptable_paths() {
  static const std::set<std::string> paths{"/healthz", "/readyz"};
  return paths;
}

std::string resolve(const std::string& source, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(source).parent_path() / path).string();
}

void check_readable(const Cursor& at, const std::string& path) {
  if (auto text = read_small_file(path, 1024 * 1024); !text) at.fail(text.error().message);
}

constexpr int kMaxBcryptCost = 14;  // about a second per check on this class of machine

bool is_bcrypt(const std::string& hash) {
  if (hash.size() != 60 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$') return false;
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return false;
  if (!std::isdigit(static_cast<unsigned char>(hash[4])) || !std::isdigit(static_cast<unsigned char>(hash[5]))) return false;
  // Let libxcrypt judge the rest: an invalid setting makes crypt_r fail ("*0"/"*1" or null).
  crypt_data data{};
  const char* out = crypt_r("probe", hash.c_str(), &data);
  return out != nullptr && out[0] == '$';
}

TlsFiles parse_tls(const Cursor& at, const std::string& source) {
  at.check_keys({"cert_file", "key_file", "min_version"});
  TlsFiles tls;
  tls.cert_file = resolve(source, at.require("cert_file").as_string());
  tls.key_file = resolve(source, at.require("key_file").as_string());
  check_readable(at.child("cert_file"), tls.cert_file);
  check_readable(at.child("key_file"), tls.key_file);
  if (at.has("min_version") && at.child("min_version").as_choice({"TLS12", "TLS13"}) == 1) tls.min_tls13 = true;
  return tls;
}

}  // namespace

WebConfig parse_web_config(const std::string& text, const std::string& source) {
  const YAML::Node root = load_yaml(text, source);
  WebConfig w;
  w.source = source;
  Cursor top(source, root, "");
  if (!root.IsDefined() || root.IsNull()) return w;  // an empty file: plain HTTP, no auth
  top.check_keys({"tls_server_config", "basic_auth_users", "unauthenticated_paths", "http_server_config"});
  if (top.has("http_server_config")) top.child("http_server_config").fail("not supported by ghostwatch; remove it");
  if (top.has("tls_server_config")) w.tls = parse_tls(top.child("tls_server_config"), source);
  if (top.has("basic_auth_users")) {
    const Cursor users = top.child("basic_auth_users");
    users.expect_map();
    for (auto it = users.node().begin(); it != users.node().end(); ++it) {
      const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
      const Cursor hash(source, it->second, "basic_auth_users." + name);
      if (name.empty() || name.find(':') != std::string::npos) hash.fail("a user name must be non-empty without ':'");
      const std::string value = hash.as_string();
      // The cost is checked before the hash is: a cost of 31 would take days to check once.
      if (value.size() == 60 && std::atoi(value.substr(4, 2).c_str()) > kMaxBcryptCost) {
        hash.fail("bcrypt cost " + value.substr(4, 2) + " is too slow for an HTTP endpoint (at most " +
                  std::to_string(kMaxBcryptCost) + "; htpasswd -nBC 10)");
      }
      if (!is_bcrypt(value)) hash.fail("expected a bcrypt hash ($2y$10$... from htpasswd -nBC 10), not a password");
      w.users[name] = value;
    }
  }
  if (top.has("unauthenticated_paths")) {
    const Cursor paths = top.child("unauthenticated_paths");
    paths.expect_sequence();
    for (std::size_t i = 0; i < paths.node().size(); ++i) {
      const std::string p = paths.item(i).as_string();
      if (!exemptable_paths().count(p)) paths.item(i).fail("only /healthz and /readyz may be served without credentials");
      w.unauthenticated_paths.insert(p);
    }
  }
  return w;
}

WebConfig load_web_config(const std::string& path) {
  return parse_web_config(read_config_file(path, "web config file"), path);
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)), key_(32, '\0') {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key_.data()), static_cast<int>(key_.size())) != 1) {
    throw std::runtime_error("no randomness for the credential cache");
  }
}

std::string BasicAuth::digest(const std::string& user, const std::string& password) const {
  const std::string input = key_ + user + '\0' + password;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md, &len, EVP_sha256(), nullptr);
  OPENSSL_cleanse(const_cast<char*>(input.data()), input.size());
  return std::string(reinterpret_cast<char*>(md), len);
}

bool BasicAuth::verify(const std::string& user, const std::string& password) const {
  auto it = users_.find(user);
  // An unknown user costs a bcrypt run too, so that timing does not tell which users exist.
  static const std::string kDummy = "$2y$10$C6UzMDM.H6dfI/f/IKxGhuSqJgXFPf1eVCKsDzNbBKWlkVv5hIBFO";
  const std::string& hash = it == users_.end() ? kDummy : it->second;
  crypt_data data{};
  const char* out = crypt_r(password.c_str(), hash.c_str(), &data);
  const bool match = out != nullptr && std::string_view(out).size() == hash.size() &&
                     CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(&data, sizeof data);
  return match && it != users_.end();
}

bool BasicAuth::check(std::string_view authorization) const {
  constexpr std::string_view kScheme = "Basic ";
  if (authorization.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  std::optional<std::string> decoded = base64_decode(authorization.substr(kScheme.size()));
  if (!decoded) return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded->substr(0, colon), password = decoded->substr(colon + 1);
  OPENSSL_cleanse(decoded->data(), decoded->size());
  const std::string key = digest(user, password);
  {
    std::lock_guard lock(mu_);
    if (verified_.count(key)) return true;
  }
  if (!verify(user, password)) return false;
  std::lock_guard lock(mu_);
  verified_.insert(key);
  return true;
}

std::optional<HttpResponse> WebAccess::refuse(const HttpRequest& request) const {
  if (!auth.enabled() || open_paths.count(request.path)) return std::nullopt;
  if (auth.check(request.authorization)) return std::nullopt;
  return HttpResponse{401, "text/plain; charset=utf-8", "unauthorized\n",
                      {{"WWW-Authenticate", "Basic realm=\"ghostwatch\", charset=\"UTF-8\""}}};
}

}  // namespace ghostwatch
