// Operating the agent as a service against the sandbox: config reload (SIGHUP, POST /-/reload),
// the HTTP surface (/, /healthz, /readyz, /config), the landing page in a real browser, and TLS
// with basic auth (checked with curl, and scraped by the sandbox's Prometheus).
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

void overwrite(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string extra_probe_yaml() {
  return R"(  - name: pg-extra
    kind: postgres
    primary: "${GW_PG_PRIMARY_DSN} password=${GW_PG_PASSWORD}"
    interval: 200ms
    poll_interval: 10ms
    timeout: 5s
    targets:
      - name: replica-1
        dsn: "${GW_PG_REPLICA1_DSN} password=${GW_PG_PASSWORD}"
)";
}

std::string dead_probe_yaml() {
  return R"(  - name: dead
    kind: postgres
    primary: "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"
    connect_timeout: 500ms
    targets:
      - name: nowhere
        dsn: "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"
)";
}

const std::string kReloadOk = "ghostwatch_config_last_reload_successful";
const std::string kReloadTime = "ghostwatch_config_last_reload_success_timestamp_seconds";

class Service : public SandboxTest {};

TEST_F(Service, ReloadKeepsUnchangedProbesRestartsChangedOnesAndRefusesABadConfig) {
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s"), ".yaml");
  Agent agent(path, free_port());
  const std::string lag_count = "ghostwatch_visibility_lag_seconds_count{probe=\"pg\",target=\"replica-1\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count) > 10; }, 15s)) << agent.log();
  const double started_at = metric_or(agent, kReloadTime);
  EXPECT_EQ(metric_or(agent, kReloadOk), 1);

  // A new probe, pg unchanged: SIGHUP starts the new one and leaves pg's series running.
  const double before_add = metric_or(agent, lag_count);
  overwrite(path, agent_yaml() + pg_probe_yaml("100ms", "5s") + extra_probe_yaml());
  std::this_thread::sleep_for(1100ms);  // so that the success timestamp visibly moves
  agent.signal(SIGHUP);
  const std::string extra_up = series("ghostwatch_target_up", "pg-extra", "replica-1");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, extra_up) == 1; }, 10s)) << agent.log();
  EXPECT_GE(metric_or(agent, lag_count), before_add) << "an unchanged probe keeps its series";
  EXPECT_EQ(metric_or(agent, kReloadOk), 1);
  EXPECT_GT(metric_or(agent, kReloadTime), started_at);

  // pg changed, pg-extra removed: POST /-/reload restarts pg (its counters start over) and
  // stops pg-extra (its series leave /metrics).
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, lag_count) > before_add + 10; }, 10s));
  const double before_change = metric_or(agent, lag_count);
  overwrite(path, agent_yaml() + pg_probe_yaml("150ms", "5s"));
  HttpResult reload = http_request(agent.port(), "POST", "/-/reload");
  EXPECT_EQ(reload.status, 200) << reload.body;
  EXPECT_NE(reload.body.find("1 restarted"), std::string::npos) << reload.body;
  EXPECT_NE(reload.body.find("1 stopped"), std::string::npos) << reload.body;
  const std::string after = agent.metrics();
  EXPECT_EQ(after.find("pg-extra"), std::string::npos) << "a removed probe's series leave /metrics";
  EXPECT_LT(metric_value(after, lag_count).value_or(1e9), before_change) << "a changed probe restarts";

  // A bad config is refused with file:line:col; the agent goes on with the old one.
  overwrite(path, agent_yaml() + pg_probe_yaml("5 seconds", "5s"));
  reload = http_request(agent.port(), "POST", "/-/reload");
  EXPECT_EQ(reload.status, 500);
  EXPECT_NE(reload.body.find(path + ":7:15: probes[0].interval: bad duration '5 seconds'"), std::string::npos)
      << reload.body;
  EXPECT_EQ(metric_or(agent, kReloadOk), 0);
  const double refused_at = metric_or(agent, lag_count);
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, lag_count) > refused_at + 5; }, 10s)) << "still measuring";
  EXPECT_NE(agent.log().find("config reload refused"), std::string::npos);
  EXPECT_NE(agent.log().find(path + ":7:15"), std::string::npos) << agent.log();
  EXPECT_EQ(http_request(agent.port(), "GET", "/-/reload").status, 405);

  // Fixed again: reload succeeds.
  overwrite(path, agent_yaml() + pg_probe_yaml("150ms", "5s"));
  agent.signal(SIGHUP);
  EXPECT_TRUE(wait_for([&] { return metric_or(agent, kReloadOk) == 1; }, 10s));
  const std::string log = agent.log();
  EXPECT_EQ(log.find(require_env("GW_PG_PASSWORD")), std::string::npos) << "no secret in the log";
  record_figure("reload: pg samples " + std::to_string(static_cast<long>(before_add)) + " before adding pg-extra, " +
                std::to_string(static_cast<long>(before_change)) + " before pg changed; restarted pg at " +
                std::to_string(static_cast<long>(metric_value(after, lag_count).value_or(-1))));
  std::remove(path.c_str());
}

TEST_F(Service, AChangedListenAddressWaitsForARestart) {
  const int port = free_port(), other = free_port();
  auto config = [](int p) {
    return "agent:\n  id: it-listen\n  listen: 127.0.0.1:" + std::to_string(p) + "\nprobes:\n" + pg_probe_yaml("200ms", "5s");
  };
  const std::string path = write_temp_file(config(port), ".yaml");
  ChildProcess agent({ghostwatch_binary(), "run", "--config", path});
  ASSERT_TRUE(wait_for([&] { return http_request(port, "GET", "/healthz").status == 200; }, 10s)) << agent.log();
  overwrite(path, config(other));
  agent.signal(SIGHUP);
  EXPECT_TRUE(wait_for([&] { return agent.log().find("takes effect at the next restart") != std::string::npos; }, 5s))
      << agent.log();
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200) << "still serving on the old address";
  EXPECT_EQ(http_request(other, "GET", "/healthz").status, 0);
  std::remove(path.c_str());
}

TEST_F(Service, ASighupStormUnderLoadIsSafe) {
  const std::string a = agent_yaml() + pg_probe_yaml("50ms", "5s") + maria_probe_yaml("200ms", "5s");
  const std::string b = agent_yaml() + pg_probe_yaml("60ms", "5s") + maria_probe_yaml("200ms", "5s");
  const std::string path = write_temp_file(a, ".yaml");
  Agent agent(path, free_port());
  const std::string up = series("ghostwatch_target_up", "maria", "replica");
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, up) == 1; }, 15s)) << agent.log();
  for (int i = 0; i < 60; ++i) {
    if (i % 10 == 0) overwrite(path, i % 20 == 0 ? b : a);
    agent.signal(SIGHUP);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(agent.alive()) << agent.log();
  EXPECT_EQ(http_request(agent.port(), "GET", "/healthz").status, 200);
  const std::string count = "ghostwatch_visibility_lag_seconds_count{probe=\"maria\",target=\"replica\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, count) > 3; }, 15s)) << agent.log();
  EXPECT_EQ(metric_or(agent, kReloadOk), 1);
  const auto stop_started = std::chrono::steady_clock::now();
  EXPECT_EQ(agent.terminate(5s), std::optional<int>(0));
  const auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stop_started).count();
  EXPECT_LT(stop_ms, 2000);
  record_figure("SIGHUP storm: 60 signals in 0.6 s under load; agent served throughout, stopped in " +
                std::to_string(stop_ms) + " ms");
  std::remove(path.c_str());
}

TEST_F(Service, HealthReadinessConfigAndLandingPage) {
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s") + dead_probe_yaml(), ".yaml");
  Agent agent(path, free_port());
  EXPECT_EQ(http_request(agent.port(), "GET", "/healthz").status, 200);
  // The dead probe never writes: not ready, and the reason says which and why.
  // Once pg has written and polled, only the dead probe keeps the agent from being ready.
  HttpResult ready;
  EXPECT_TRUE(wait_for(
      [&] {
        ready = http_request(agent.port(), "GET", "/readyz");
        return ready.body.find("dead") != std::string::npos && ready.body.find("probe pg:") == std::string::npos;
      },
      10s))
      << ready.body;
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("probe dead: no canary written yet (last error: "), std::string::npos) << ready.body;
  EXPECT_EQ(ready.body.find("probe pg:"), std::string::npos) << ready.body;

  HttpResult config = http_request(agent.port(), "GET", "/config");
  EXPECT_EQ(config.status, 200);
  EXPECT_NE(config.body.find("name: pg"), std::string::npos) << config.body;
  EXPECT_NE(config.body.find("password=***"), std::string::npos) << config.body;
  EXPECT_EQ(config.body.find(require_env("GW_PG_PASSWORD")), std::string::npos);
  // What check-config prints, with the command line's --listen applied (/config is the effective config).
  std::string check = run_command({ghostwatch_binary(), "check-config", "--config", path}, 10s).out;
  check = std::regex_replace(check, std::regex("listen: [^\n]*"), "listen: 127.0.0.1:" + std::to_string(agent.port()));
  EXPECT_EQ(config.body, check);

  HttpResult page = http_request(agent.port(), "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("data-target=\"replica-1\""), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("data-target=\"nowhere\"><td>dead</td><td>nowhere</td><td class=\"down\">DOWN</td>"),
            std::string::npos)
      << page.body;
  EXPECT_EQ(http_request(agent.port(), "GET", "/nope").status, 404);

  // Reloading without the dead probe makes the agent ready.
  overwrite(path, agent_yaml() + pg_probe_yaml("100ms", "5s"));
  EXPECT_EQ(http_request(agent.port(), "POST", "/-/reload").status, 200);
  EXPECT_TRUE(wait_for([&] { return http_request(agent.port(), "GET", "/readyz").status == 200; }, 10s))
      << http_request(agent.port(), "GET", "/readyz").body;
  std::remove(path.c_str());
}

// Debian's chromium, headless, on the agent's page: `what` is --dump-dom (the DOM it built,
// on stdout) or --screenshot=FILE.
std::string chromium(int port, const std::string& what) {
  const std::string profile = write_temp_file("", ".d");
  std::remove(profile.c_str());
  const auto r = run_command({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                              "--no-first-run", "--disable-background-networking", "--disable-component-update",
                              "--disable-sync", "--hide-scrollbars", "--window-size=1100,900",
                              "--user-data-dir=" + profile, what, "http://127.0.0.1:" + std::to_string(port) + "/"},
                             60s);
  run_command({"/bin/rm", "-rf", profile}, 10s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// How many pixels of a PNG (8-bit RGB or RGBA, as chromium writes) have exactly this colour.
long pixels_of_colour(const std::string& png_path, unsigned rgb) {
  std::ifstream in(png_path, std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u32 = [&png](std::size_t at) {
    return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
           (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
  };
  uint32_t width = 0, height = 0, channels = 0;
  std::string compressed;
  for (std::size_t at = 8; at + 12 <= png.size();) {
    const uint32_t length = u32(at);
    const std::string type = png.substr(at + 4, 4);
    if (type == "IHDR") {
      width = u32(at + 8), height = u32(at + 12);
      const int depth = uint8_t(png[at + 16]), colour_type = uint8_t(png[at + 17]);
      if (depth != 8 || (colour_type != 2 && colour_type != 6)) return -1;
      channels = colour_type == 6 ? 4 : 3;
    } else if (type == "IDAT") {
      compressed += png.substr(at + 8, length);
    }
    at += 12 + length;
  }
  const std::size_t stride = std::size_t(width) * channels;
  std::vector<unsigned char> raw((stride + 1) * height);
  uLongf raw_size = raw.size();
  if (channels == 0 || uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(compressed.data()),
                                  compressed.size()) != Z_OK) {
    return -1;
  }
  // Undo each row's filter (PNG spec, 9.2), then count.
  std::vector<unsigned char> previous(stride, 0), row(stride);
  long count = 0;
  for (uint32_t y = 0; y < height; ++y) {
    const unsigned char filter = raw[y * (stride + 1)];
    const unsigned char* line = &raw[y * (stride + 1) + 1];
    for (std::size_t x = 0; x < stride; ++x) {
      const int a = x >= channels ? row[x - channels] : 0, b = previous[x], c = x >= channels ? previous[x - channels] : 0;
      int predicted = 0;
      if (filter == 1) predicted = a;
      else if (filter == 2) predicted = b;
      else if (filter == 3) predicted = (a + b) / 2;
      else if (filter == 4) {
        const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[x] = static_cast<unsigned char>(line[x] + predicted);
    }
    for (std::size_t x = 0; x < stride; x += channels) {
      count += ((unsigned(row[x]) << 16) | (unsigned(row[x + 1]) << 8) | row[x + 2]) == rgb;
    }
    previous.swap(row);
  }
  return count;
}

// The upper bound of the slowest canary write the agent timed, in ms: the smallest bucket of
// ghostwatch_canary_write_seconds that holds every write (infinity when only +Inf does).
double slowest_write_bound_ms(const std::string& metrics, const std::string& probe) {
  const std::regex bucket(R"rx(ghostwatch_canary_write_seconds_bucket\{([^}]*)\} ([0-9.e+]+))rx");
  const std::regex le(R"rx(le="([^"]+)")rx");
  const auto total = metric_value(metrics, "ghostwatch_canary_write_seconds_count{probe=\"" + probe + "\"}");
  double bound = std::numeric_limits<double>::infinity();
  for (std::sregex_iterator it(metrics.begin(), metrics.end(), bucket), end; it != end; ++it) {
    const std::string labels = (*it)[1].str();
    std::smatch edge;
    if (labels.find("probe=\"" + probe + "\"") == std::string::npos || !std::regex_search(labels, edge, le)) continue;
    if (total && edge[1] != "+Inf" && std::stod((*it)[2].str()) >= *total) bound = std::min(bound, std::stod(edge[1]) * 1000);
  }
  return bound;
}

// An attribute's number in the first element of the DOM that has all of `has` (nullopt if none).
std::optional<double> attribute(const std::string& dom, const std::string& tag, const std::string& has,
                                const std::string& name) {
  const std::regex element("<" + tag + "[^>]*>");
  for (std::sregex_iterator it(dom.begin(), dom.end(), element), end; it != end; ++it) {
    const std::string text = it->str();
    if (text.find(has) == std::string::npos) continue;
    std::smatch m;
    if (std::regex_search(text, m, std::regex(name + R"re(="([-0-9.]+)")re"))) return std::stod(m[1].str());
  }
  return std::nullopt;
}

TEST_F(Service, TheLandingPageChartsLiveFiguresInABrowser) {
  struct stat st;
  ASSERT_EQ(stat("/usr/bin/chromium", &st), 0) << "chromium is not installed (scripts/install-deps.sh)";
  // A read path on replica-2 alone: 200 ms behind, a read right after the write is stale and
  // one 400 ms after it is not.
  const std::string read_path = "    read_paths:\n      - name: replica-2-only\n        targets: [replica-2]\n"
                                "    read_delays: [0ms, 400ms]\n";
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s", read_path), ".yaml");
  Agent agent(path, free_port());
  const std::string seen = "ghostwatch_visibility_lag_seconds_count{probe=\"pg\",target=\"replica-2\"}";
  ASSERT_TRUE(wait_for([&] { return metric_or(agent, seen) > 3; }, 15s)) << agent.log();
  // Two 15 s steps of history, so that each line is a line, not a dot.
  const std::string two_points = "data-target=\"replica-2\" data-points=\"2\"";
  ASSERT_TRUE(wait_for([&] { return http_request(agent.port(), "GET", "/").body.find(two_points) != std::string::npos; }, 20s));
  const std::string dom = chromium(agent.port(), "--dump-dom");

  // The table's row, as before the charts.
  const std::regex row(R"rx(<tr data-probe="pg" data-target="replica-2"><td>pg</td><td>replica-2</td><td class="up">up</td><td class="role">replica</td><td class="source">static</td><td>([0-9]+\.[0-9])</td><td>([0-9]+\.[0-9])</td>)rx");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom, m, row)) << dom;
  const double last_ms = std::stod(m[1].str());
  const double delay_ms = std::stod(require_env("GW_PG_DELAY_MS"));
  // replica-2 applies WAL GW_PG_DELAY_MS late, counted from the commit's own timestamp, which
  // comes one write latency before the ack that ghostwatch counts from (several ms under the
  // sanitizers); a commit whose WAL flush was slow (an fsync on a busy disk: 73 ms once under
  // ASan) is acked that much after its timestamp: the bound allows the slowest write timed.
  const double slack_ms = std::max(20.0, slowest_write_bound_ms(agent.metrics(), "pg"));
  EXPECT_GE(last_ms, delay_ms - slack_ms);
  EXPECT_LT(last_ms, delay_ms + 1000);
  EXPECT_NE(dom.find("<span id=\"agent-id\">it-"), std::string::npos);
  EXPECT_NE(dom.find("<span id=\"version\">"), std::string::npos);

  // replica-2's chart: drawn from live samples, its newest p50 the apply delay.
  const std::string chart = "data-target=\"replica-2\"";
  const auto p50 = attribute(dom, "svg", chart, "data-last-p50-ms");
  ASSERT_TRUE(p50.has_value()) << dom;
  EXPECT_GE(*p50, delay_ms - slack_ms);
  EXPECT_LT(*p50, delay_ms + 1000);
  EXPECT_GE(attribute(dom, "svg", chart, "data-points").value_or(0), 2);
  const auto svg = dom.find("<svg class=\"chart\" viewBox=\"0 0 320 96\" width=\"320\" height=\"96\" role=\"img\" data-probe=\"pg\" " + chart);
  ASSERT_NE(svg, std::string::npos) << dom;
  const std::string drawn = dom.substr(svg, dom.find("</svg>", svg) - svg);
  EXPECT_TRUE(std::regex_search(drawn, std::regex(R"(<path class="p50" d="M[0-9.]+ [0-9.]+h0L[0-9.]+ [0-9.]+)"))) << drawn;
  EXPECT_TRUE(std::regex_search(drawn, std::regex(R"(<path class="p99" d="M[0-9.]+ [0-9.]+h0L)"))) << drawn;
  // The browser's DOM holds the character, not the entity.
  EXPECT_NE(dom.find("<span class=\"meta\">replica \u00b7 static</span>"), std::string::npos) << "role and source";

  // The read path's bars: stale right after the write, fresh 400 ms later.
  const auto stale_now = attribute(dom, "rect", "data-delay=\"0ms\"", "data-ratio");
  const auto stale_later = attribute(dom, "rect", "data-delay=\"400ms\"", "data-ratio");
  ASSERT_TRUE(stale_now && stale_later) << dom;
  EXPECT_GE(*stale_now, 0.8);
  EXPECT_LE(*stale_later, 0.2);
  EXPECT_GE(attribute(dom, "rect", "data-delay=\"0ms\"", "data-reads").value_or(0), 3);

  // And the browser painted them: the p50 and p99 line colours and the stale bar's are on screen.
  const std::string png = write_temp_file("", ".png");
  chromium(agent.port(), "--screenshot=" + png);
  const long blue = pixels_of_colour(png, 0x1f77b4), orange = pixels_of_colour(png, 0xff7f0e),
             red = pixels_of_colour(png, 0xd62728);
  EXPECT_GE(blue, 20) << png;
  EXPECT_GE(orange, 20) << png;
  EXPECT_GE(red, 200) << png;
  record_figure("landing page in chromium: replica-2 last lag " + m[1].str() + " ms, chart p50 " + std::to_string(*p50) +
                " ms (apply delay " + require_env("GW_PG_DELAY_MS") + " ms); stale reads at 0ms " +
                std::to_string(*stale_now) + ", at 400ms " + std::to_string(*stale_later) + "; pixels p50/p99/stale " +
                std::to_string(blue) + "/" + std::to_string(orange) + "/" + std::to_string(red));
  std::remove(png.c_str());
  std::remove(path.c_str());
}

// curl against the agent over HTTPS; returns the HTTP status ("000": no HTTP answer).
std::string curl_status(const std::vector<std::string>& extra, const std::string& url, std::string* body = nullptr) {
  std::vector<std::string> argv{"/usr/bin/curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  const auto r = run_command(argv, 10s);
  const auto nl = r.out.rfind('\n');
  if (body) *body = r.out.substr(0, nl == std::string::npos ? 0 : nl);
  return nl == std::string::npos ? r.out : r.out.substr(nl + 1);
}

struct TlsFixture {
  std::string dir, cert, key, web_config;
};

// A certificate made here with the openssl CLI, and a bcrypt hash made with mkpasswd.
TlsFixture make_tls(const std::string& user, const std::string& password, const std::string& open_paths) {
  TlsFixture f;
  f.dir = write_temp_file("", ".tls");
  std::remove(f.dir.c_str());
  mkdir(f.dir.c_str(), 0700);
  f.cert = f.dir + "/server.crt";
  f.key = f.dir + "/server.key";
  const auto made = run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f.key,
                                 "-out", f.cert},
                                30s);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  const auto hash = run_command({"/usr/bin/mkpasswd", "-m", "bcrypt", "-R", "10", password}, 30s);
  EXPECT_EQ(hash.exit_code, 0) << hash.err;
  std::string h = hash.out;
  while (!h.empty() && h.back() == '\n') h.pop_back();
  f.web_config = f.dir + "/web.yml";
  overwrite(f.web_config, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  " + user +
                              ": " + h + "\n" + open_paths);
  return f;
}

TEST_F(Service, TlsAndBasicAuthGuardEveryEndpoint) {
  const TlsFixture tls = make_tls("scraper", "Tls-Test-Secret-9", "unauthenticated_paths: [/healthz]\n");
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s"), ".yaml");
  const int port = free_port();
  const std::string base = "https://127.0.0.1:" + std::to_string(port);
  ChildProcess agent({ghostwatch_binary(), "run", "--config", path, "--listen", "127.0.0.1:" + std::to_string(port),
                      "--web-config", tls.web_config});
  const std::vector<std::string> ca{"--cacert", tls.cert};
  ASSERT_TRUE(wait_for([&] { return curl_status(ca, base + "/healthz") == "200"; }, 10s)) << agent.log();
  std::vector<std::string> good = ca, wrong = ca, unknown = ca;
  good.insert(good.end(), {"-u", "scraper:Tls-Test-Secret-9"});
  wrong.insert(wrong.end(), {"-u", "scraper:nope"});
  unknown.insert(unknown.end(), {"-u", "someone:Tls-Test-Secret-9"});
  for (const char* p : {"/metrics", "/", "/readyz", "/config"}) {
    EXPECT_EQ(curl_status(ca, base + p), "401") << p;
    EXPECT_EQ(curl_status(wrong, base + p), "401") << p;
    EXPECT_EQ(curl_status(unknown, base + p), "401") << p;
  }
  std::string metrics;
  EXPECT_EQ(curl_status(good, base + "/metrics", &metrics), "200");
  EXPECT_NE(metrics.find("ghostwatch_target_up{probe=\"pg\""), std::string::npos) << metrics;
  std::vector<std::string> post = good;
  post.insert(post.end(), {"-X", "POST"});
  EXPECT_EQ(curl_status(post, base + "/-/reload"), "200");
  EXPECT_EQ(curl_status({}, "http://127.0.0.1:" + std::to_string(port) + "/healthz"), "000") << "no plain HTTP";
  EXPECT_EQ(curl_status({}, base + "/healthz"), "000") << "an unknown CA is refused by the client";
  EXPECT_EQ(agent.log().find("Tls-Test-Secret-9"), std::string::npos);
  EXPECT_EQ(agent.terminate(5s), std::optional<int>(0));

  // Without unauthenticated_paths, /healthz needs credentials too.
  const TlsFixture closed = make_tls("scraper", "pw-2", "");
  ChildProcess strict({ghostwatch_binary(), "run", "--config", path, "--listen", "127.0.0.1:" + std::to_string(port),
                       "--web-config", closed.web_config});
  const std::vector<std::string> ca2{"--cacert", closed.cert};
  ASSERT_TRUE(wait_for([&] { return curl_status(ca2, base + "/healthz") == "401"; }, 10s)) << strict.log();
  run_command({"/bin/rm", "-rf", tls.dir, closed.dir}, 10s);
  std::remove(path.c_str());
}

TEST_F(Service, AKeyThatDoesNotMatchTheCertificateIsAStartupError) {
  const TlsFixture a = make_tls("u", "p", ""), b = make_tls("u", "p", "");
  overwrite(a.web_config, "tls_server_config:\n  cert_file: " + a.cert + "\n  key_file: " + b.key + "\n");
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s"), ".yaml");
  const auto r = run_command({ghostwatch_binary(), "run", "--config", path, "--listen", "127.0.0.1:" + std::to_string(free_port()),
                              "--web-config", a.web_config},
                             10s);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("does not match the certificate"), std::string::npos) << r.err;
  overwrite(a.web_config, "basic_auth_users:\n  u: not-a-hash\n");
  const auto bad = run_command({ghostwatch_binary(), "run", "--config", path, "--web-config", a.web_config}, 10s);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(a.web_config + ":2:6: basic_auth_users.u: expected a bcrypt hash"), std::string::npos) << bad.err;
  run_command({"/bin/rm", "-rf", a.dir, b.dir}, 10s);
  std::remove(path.c_str());
}

TEST_F(Service, TheSandboxPrometheusScrapesOverHttpsWithBasicAuth) {
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s"), ".yaml");
  ChildProcess agent({ghostwatch_binary(), "run", "--config", path, "--listen", require_env("GW_AGENT_TLS_ADDR"),
                      "--web-config", require_env("GW_WEB_CONFIG")});
  const std::string query = require_env("GW_PROMETHEUS_URL") +
                            "/api/v1/query?query=ghostwatch_target_up%7Bjob%3D%22ghostwatch-tls%22%2Ctarget%3D%22replica-1%22%7D";
  std::string answer;
  const bool scraped = wait_for(
      [&] {
        answer = run_command({"/usr/bin/curl", "-s", "-m", "5", query}, 10s).out;
        return answer.find("\"value\":[") != std::string::npos;
      },
      30s);
  ASSERT_TRUE(scraped) << answer << agent.log();
  const auto j = nlohmann::json::parse(answer);
  EXPECT_EQ(j["data"]["result"][0]["value"][1], "1") << answer;
  const auto up = run_command({"/usr/bin/curl", "-s", "-m", "5",
                               require_env("GW_PROMETHEUS_URL") + "/api/v1/query?query=up%7Bjob%3D%22ghostwatch-tls%22%7D"},
                              10s);
  EXPECT_NE(up.out.find("\"1\"]"), std::string::npos) << up.out;
  std::remove(path.c_str());
}

TEST_F(Service, LogsAreOneJsonOrLogfmtEventPerLineWithProbeAndTarget) {
  const std::string path = write_temp_file(agent_yaml() + dead_probe_yaml(), ".yaml");
  for (const std::string format : {"json", "logfmt"}) {
    ChildProcess agent({ghostwatch_binary(), "run", "--config", path, "--listen", "127.0.0.1:" + std::to_string(free_port()),
                        "--log-format", format});
    ASSERT_TRUE(wait_for([&] { return agent.log().find("nowhere") != std::string::npos; }, 10s)) << agent.log();
    agent.terminate(5s);
    std::stringstream lines(agent.log());
    std::string line;
    int events = 0;
    bool target_event = false;
    while (std::getline(lines, line)) {
      ++events;
      if (format == "json") {
        const auto j = nlohmann::json::parse(line);  // throws (fails the test) on a line that is not JSON
        EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
        target_event = target_event || (j.value("probe", "") == "dead" && j.value("target", "") == "nowhere");
      } else {
        EXPECT_EQ(line.rfind("time=", 0), 0u) << line;
        EXPECT_NE(line.find(" level="), std::string::npos) << line;
        target_event = target_event || line.find(" probe=dead target=nowhere ") != std::string::npos;
      }
    }
    EXPECT_GT(events, 2);
    EXPECT_TRUE(target_event) << format << ": no event names probe dead and target nowhere\n" << agent.log();
  }
  std::remove(path.c_str());
}

TEST_F(Service, TheLiveViewRedrawsOnATerminalAndPrintsPlainTablesOtherwise) {
  const std::string path = write_temp_file(agent_yaml() + pg_probe_yaml("100ms", "5s") + dead_probe_yaml(), ".yaml");
  const std::string port = std::to_string(free_port());
  // Not a terminal: successive plain tables.
  ChildProcess plain({ghostwatch_binary(), "run", "--config", path, "--listen", "127.0.0.1:" + port, "--live"});
  ASSERT_TRUE(wait_for([&] { return count_of(plain.log(), "probe        target") >= 3; }, 10s)) << plain.log();
  plain.terminate(5s);
  const std::string text = plain.log();
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << "no terminal escapes when stdout is not a terminal";
  // The target that never answered: down, and no lag figure at all (last, p50, p99 are '-').
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\ndead +nowhere +NO +- +- +- )"))) << text;
  // A terminal: script(1) gives the agent a pseudo-terminal. Through /bin/sh, which does not exec
  // the command as bash does: the agent is then not the terminal's session leader, the harder
  // case for a hangup. The first draw comes a second after a start that a loaded machine slows,
  // so the redraws are waited for, not given a fixed time.
  const std::string command =
      ghostwatch_binary() + " run --config " + path + " --listen 127.0.0.1:" + std::to_string(free_port()) + " --live";
  const std::string typescript = write_temp_file("", ".typescript");
  auto recorded = [&] {
    std::stringstream text;
    text << std::ifstream(typescript).rdbuf();
    return text.str();
  };
  auto on_terminal = [&] {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/env", "SHELL=/bin/sh", "/usr/bin/script", "-q", "-e", "-f", "-c", command, typescript});
  };
  auto agent_pid = [&] {  // the agent's own command line exactly, not the shell's that holds it
    const CommandResult found = run_command({"/usr/bin/pgrep", "-x", "-f", "--", command}, 5s);
    return found.exit_code == 0 ? std::stoi(found.out) : -1;
  };
  auto agent_gone = [&] { return run_command({"/usr/bin/pgrep", "-f", "--", command}, 5s).exit_code == 1; };

  // Ctrl-C: the terminal sends SIGINT to its foreground process group. The agent stops cleanly
  // and script(1) ends with it.
  auto tty = on_terminal();
  EXPECT_TRUE(wait_for([&] { return count_of(recorded(), "\x1b[H\x1b[J") >= 2; }, 15s)) << recorded() << tty->log();
  const pid_t pid = agent_pid();
  ASSERT_GT(pid, 0) << recorded();
  const pid_t group = getpgid(pid);
  ASSERT_GT(group, 1);
  kill(-group, SIGINT);
  EXPECT_TRUE(wait_for([&] { return !tty->alive(); }, 10s)) << recorded();
  EXPECT_NE(recorded().find("received SIGINT, stopping"), std::string::npos) << recorded();
  EXPECT_TRUE(wait_for(agent_gone, 10s));

  // A hangup: the terminal goes away under the agent (a closed window, a dropped ssh session;
  // here script(1) killed). SIGHUP would otherwise reload the config and leave the agent running
  // unseen.
  overwrite(typescript, "");
  tty = on_terminal();
  EXPECT_TRUE(wait_for([&] { return count_of(recorded(), "\x1b[H\x1b[J") >= 1; }, 15s)) << recorded() << tty->log();
  tty->signal(SIGKILL);
  tty->terminate(5s);
  EXPECT_TRUE(wait_for(agent_gone, 10s)) << "the agent outlived its terminal";
  if (!agent_gone()) run_command({"/usr/bin/pkill", "-KILL", "-f", "--", command}, 5s);
  std::remove(typescript.c_str());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ghostwatch::testing
