#include "agent/web_config.h"

#include <crypt.h>
#include <gtest/gtest.h>

#include "agent/config.h"
#include "common/base64.h"

namespace ghostwatch {
namespace {

std::string bcrypt(const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof salt), nullptr);
  crypt_data data{};
  return crypt_r(password.c_str(), salt, &data);
}

std::string web_error(const std::string& text) {
  try {
    parse_web_config(text, "web.yml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + base64_encode(user + ":" + password);
}

TEST(Base64, RoundTripsAndRejectsGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "user:pa:ss", std::string("\0\xff", 2)}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("dXNlcjpwYXNz="));
  EXPECT_FALSE(base64_decode("dX*l"));
  EXPECT_FALSE(base64_decode("d=Nl"));
  EXPECT_FALSE(base64_decode("QY==")) << "non-zero unused bits (a fuzzer finding): not canonical";
  EXPECT_EQ(base64_decode("QQ=="), "A");
}

TEST(WebConfig, ParsesUsersAndOpenPaths) {
  const std::string hash = bcrypt("s3cret");
  const WebConfig w = parse_web_config("basic_auth_users:\n  prom: " + hash + "\nunauthenticated_paths: [/healthz]\n", "web.yml");
  EXPECT_FALSE(w.tls);
  EXPECT_EQ(w.users.at("prom"), hash);
  EXPECT_EQ(w.unauthenticated_paths.count("/healthz"), 1u);
}

TEST(WebConfig, ErrorsNameTheLineAndKey) {
  EXPECT_EQ(web_error("basic_auth_users:\n  prom: plaintext\n"),
            "web.yml:2:9: basic_auth_users.prom: expected a bcrypt hash ($2y$10$... from htpasswd -nBC 10), not a "
            "password");
  EXPECT_NE(web_error("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n")
                .find("web.yml:2:14: tls_server_config.cert_file: cannot read '/nonexistent.crt'"),
            std::string::npos);
  EXPECT_NE(web_error("unauthenticated_paths: [/metrics]\n").find("only /healthz and /readyz"), std::string::npos);
  EXPECT_NE(web_error("basic_auth_user: {}\n").find("unknown key 'basic_auth_user'"), std::string::npos);
  EXPECT_NE(web_error("tls_server_config:\n  cert_file: a\n").find("missing required key 'key_file'"), std::string::npos);
  // A cost of 31 would take days to check: refused before any check runs.
  EXPECT_NE(web_error("basic_auth_users:\n  u: $2y$31$C6UzMDM.H6dfI/f/IKxGhuSqJgXFPf1eVCKsDzNbBKWlkVv5hIBFO\n")
                .find("bcrypt cost 31 is too slow"),
            std::string::npos);
  // A fuzzer finding: a user without a name used to escape as a YAML exception.
  EXPECT_NE(web_error("basic_auth_users: {:}\n").find("a user name must be non-empty"), std::string::npos)
      << web_error("basic_auth_users: {:}\n");
}

TEST(BasicAuth, ChecksBcryptAndCachesOnlySuccesses) {
  BasicAuth auth({{"prom", bcrypt("s3cret")}});
  EXPECT_TRUE(auth.check(basic("prom", "s3cret")));
  EXPECT_TRUE(auth.check(basic("prom", "s3cret")));  // from the cache
  EXPECT_FALSE(auth.check(basic("prom", "s3cret ")));
  EXPECT_FALSE(auth.check(basic("other", "s3cret")));
  EXPECT_FALSE(auth.check(""));
  EXPECT_FALSE(auth.check("Bearer abc"));
  EXPECT_FALSE(auth.check("Basic !!!!"));
  EXPECT_FALSE(auth.check("Basic " + base64_encode("no-colon")));
  EXPECT_TRUE(auth.check("basic " + base64_encode("prom:s3cret")));  // the scheme is case-insensitive
}

TEST(WebAccess, RefusesWithout401ChallengeUnlessOpen) {
  WebConfig w;
  w.users["prom"] = bcrypt("pw");
  w.unauthenticated_paths = {"/healthz"};
  const WebAccess access(w);
  HttpRequest r;
  r.path = "/metrics";
  auto refused = access.refuse(r);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(refused->headers.at(0).first, "WWW-Authenticate");
  r.authorization = basic("prom", "pw");
  EXPECT_FALSE(access.refuse(r));
  HttpRequest health;
  health.path = "/healthz";
  EXPECT_FALSE(access.refuse(health));
  HttpRequest ready;
  ready.path = "/readyz";
  EXPECT_TRUE(access.refuse(ready));
  EXPECT_FALSE(WebAccess(WebConfig{}).refuse(r)) << "no users: no auth";
}

}  // namespace
}  // namespace ghostwatch
