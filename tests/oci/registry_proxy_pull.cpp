// registry_client through an HTTP proxy (proxy.hpp): a small proxy here, on 127.0.0.1, in front
// of docker-registry. The registry is named "registry.test" (a name that never resolves, RFC
// 6761), which only the proxy knows how to reach: a pull that succeeds went through the proxy.
// With TLS, through a CONNECT tunnel, TLS checked against the registry's name and the test's CA
// inside it; in plain HTTP (an insecure registry), as requests in absolute-form that the proxy
// forwards, pulls and pushes alike.
#include <cz/oci/registry/client.hpp>
#include <cz/oci/registry/push.hpp>

#include "registry_image.hpp"
#include "registry_server.hpp"
#include "support/support.hpp"

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>

using namespace cz_test;
namespace oci = cz::oci;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;

namespace {

// What test_proxy saw of one request: its request line as sent ("CONNECT registry.test:5000
// HTTP/1.1", "GET http://registry.test:5000/v2/ HTTP/1.1"), its Proxy-Authorization and, for
// one it forwarded, its Authorization (what the registry was to get).
struct proxied_request {
    std::string line;
    std::string proxy_authorization;
    std::string authorization;
    bool is_connect() const { return line.rfind("CONNECT ", 0) == 0; }
};

// An HTTP proxy: tunnels CONNECT to registry.test:PORT, and forwards plain-HTTP requests in
// absolute-form to http://registry.test:PORT or http://cdn.test:PORT (each reached as
// 127.0.0.1:PORT) in origin-form, without Proxy-Authorization, as squid does; or answers every
// request with `refuse` (407, 502) when that is set. `answer`, when set, may answer a forwarded
// request itself (its request line in, a whole response out, or "" to forward it). Records every
// request. Blocking sockets, a thread per connection, as fault_proxy.hpp.
class test_proxy {
    using tcp = asio::ip::tcp;

public:
    explicit test_proxy(int refuse = 0, std::function<std::string(const std::string&)> answer = {})
        : refuse_(refuse), answer_(std::move(answer)),
          acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~test_proxy() {
        stopping_ = true;
        std::error_code ignored;
        tcp::socket wake(io_);
        wake.connect(acceptor_.local_endpoint(), ignored);
        accept_thread_.join();
        {
            std::lock_guard lock(mutex_);
            for (int fd : open_)
                ::shutdown(fd, SHUT_RDWR);
        }
        for (auto& t : threads_)
            t.join();
    }
    test_proxy(const test_proxy&) = delete;
    test_proxy& operator=(const test_proxy&) = delete;

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    std::vector<proxied_request> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    // The targets of the CONNECTs ("registry.test:5000"), in order.
    std::vector<std::string> connects() const {
        std::vector<std::string> out;
        for (const auto& r : requests())
            if (r.is_connect()) out.push_back(r.line.substr(8, r.line.rfind(' ') - 8));
        return out;
    }
    std::vector<std::string> authorizations() const {
        std::vector<std::string> out;
        for (const auto& r : requests())
            out.push_back(r.proxy_authorization);
        return out;
    }

private:
    void accept_loop() {
        for (;;) {
            auto client = std::make_shared<tcp::socket>(io_);
            std::error_code ec;
            acceptor_.accept(*client, ec);
            if (stopping_) return;
            if (ec) continue;
            std::lock_guard lock(mutex_);
            open_.push_back(client->native_handle());
            threads_.emplace_back([this, client] { serve(*client); });
        }
    }

    // The value of header `name` (as written, "Name: "), or "".
    static std::string field(const std::string& head, const std::string& name) {
        auto at = head.find("\r\n" + name + ": ");
        if (at == std::string::npos) return {};
        auto from = at + 4 + name.size();
        return head.substr(from, head.find("\r\n", from) - from);
    }

    // Reads one request head from `client` (through `in`) and records it; "" at the end.
    std::string read_head(tcp::socket& client, asio::streambuf& in) {
        std::error_code ec;
        auto n = asio::read_until(client, in, "\r\n\r\n", ec);
        if (ec) return {};
        std::string head(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + n);
        in.consume(n);
        std::lock_guard lock(mutex_);
        requests_.push_back({head.substr(0, head.find("\r\n")), field(head, "Proxy-Authorization"),
                             field(head, "Authorization")});
        return head;
    }

    void open(tcp::socket& s) {
        std::lock_guard lock(mutex_);
        open_.push_back(s.native_handle());
    }

    // Connects `upstream` to the test host `authority` names ("registry.test:5000"); false for
    // another host.
    bool connect_upstream(tcp::socket& upstream, const std::string& authority, bool cdn_too) {
        auto colon = authority.rfind(':');
        if (colon == std::string::npos) return false;
        auto host = authority.substr(0, colon);
        if (host != "registry.test" && !(cdn_too && host == "cdn.test")) return false;
        std::error_code ec;
        upstream.connect({asio::ip::make_address("127.0.0.1"),
                          static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)))},
                         ec);
        if (ec) return false;
        open(upstream);
        return true;
    }

    void serve(tcp::socket& client) {
        asio::streambuf in;
        auto head = read_head(client, in);
        if (head.empty()) return;
        std::error_code ec;
        auto answer = [&](const std::string& status) {
            asio::write(client,
                        asio::buffer("HTTP/1.1 " + status +
                                     "\r\nProxy-Authenticate: Basic realm=\"cz-test\"\r\n"
                                     "Content-Length: 0\r\nConnection: close\r\n\r\n"),
                        ec);
        };
        auto line = head.substr(0, head.find("\r\n"));
        auto first_space = line.find(' ');
        auto target = line.substr(first_space + 1, line.rfind(' ') - first_space - 1);
        if (refuse_ == 407) return answer("407 Proxy Authentication Required");
        if (refuse_ != 0) return answer(std::to_string(refuse_) + " Refused");
        tcp::socket upstream(io_);
        if (line.rfind("CONNECT ", 0) != 0) return forward(client, in, std::move(head), upstream);
        if (!connect_upstream(upstream, target, false)) return answer("502 Bad Gateway");
        asio::write(client,
                    asio::buffer(std::string("HTTP/1.1 200 Connection established\r\n\r\n")), ec);
        if (in.size() > 0) asio::write(upstream, in.data(), ec); // what came after the head
        std::thread back([&] { pump(upstream, client); });
        pump(client, upstream);
        back.join();
    }

    // Forwards absolute-form requests for one origin, each rewritten to origin-form with its
    // body (Content-Length: cz sends no chunked requests), while the answers flow back as they
    // come. The client sends its next request only once it has read the last answer, so an
    // answer of the proxy's own never interleaves with one from upstream.
    void forward(tcp::socket& client, asio::streambuf& in, std::string head,
                 tcp::socket& upstream) {
        std::error_code ec;
        auto authority_of = [](const std::string& h) -> std::string {
            auto line = h.substr(0, h.find("\r\n"));
            auto space = line.find(' ');
            auto target = line.substr(space + 1, line.rfind(' ') - space - 1);
            if (target.rfind("http://", 0) != 0) return {};
            return target.substr(7, target.find('/', 7) - 7);
        };
        auto origin = authority_of(head);
        if (origin.empty() || !connect_upstream(upstream, origin, true)) {
            asio::write(client,
                        asio::buffer(std::string("HTTP/1.1 502 Bad Gateway\r\n"
                                                 "Content-Length: 0\r\n\r\n")),
                        ec);
            return;
        }
        std::thread back([&] { pump(upstream, client); });
        while (!head.empty() && authority_of(head) == origin) {
            auto line = head.substr(0, head.find("\r\n"));
            std::string own = answer_ ? answer_(line) : std::string();
            auto space = line.find(' ');
            auto path_at = line.find('/', space + 1 + 7);
            std::string out = line.substr(0, space + 1) + line.substr(path_at) + "\r\n";
            for (auto pos = head.find("\r\n") + 2; pos + 2 < head.size();) {
                auto end = head.find("\r\n", pos);
                auto f = head.substr(pos, end - pos);
                if (f.rfind("Proxy-Authorization:", 0) != 0) out += f + "\r\n";
                pos = end + 2;
            }
            out += "\r\n";
            auto length_text = field(head, "Content-Length");
            std::uint64_t length = length_text.empty() ? 0 : std::stoull(length_text);
            if (own.empty()) asio::write(upstream, asio::buffer(out), ec);
            while (!ec && length > 0) {
                if (in.size() == 0) {
                    auto n = client.read_some(in.prepare(65536), ec);
                    in.commit(n);
                    if (ec) break;
                }
                auto take = std::min<std::uint64_t>(in.size(), length);
                auto body = asio::buffer(in.data(), take);
                if (own.empty()) asio::write(upstream, body, ec);
                in.consume(take);
                length -= take;
            }
            if (ec) break;
            if (!own.empty()) asio::write(client, asio::buffer(own), ec);
            head = read_head(client, in);
        }
        upstream.shutdown(tcp::socket::shutdown_send, ec);
        back.join();
    }

    // Copies `from` to `to` until either ends, then ends `to`'s sending side.
    static void pump(tcp::socket& from, tcp::socket& to) {
        char buffer[16384];
        for (;;) {
            std::error_code ec;
            auto n = from.read_some(asio::buffer(buffer), ec);
            if (ec) break;
            asio::write(to, asio::buffer(buffer, n), ec);
            if (ec) break;
        }
        std::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        from.shutdown(tcp::socket::shutdown_receive, ignored);
    }

    int refuse_;
    std::function<std::string(const std::string&)> answer_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::vector<int> open_;
    std::vector<std::thread> threads_;
    std::vector<proxied_request> requests_;
};

// Sets environment variables for a scope, restoring them after.
class scoped_env {
public:
    scoped_env(std::initializer_list<std::pair<const char*, std::string>> vars) {
        for (const char* name :
             {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"}) {
            const char* v = std::getenv(name);
            saved_.push_back({name, v ? std::optional<std::string>(v) : std::nullopt});
            ::unsetenv(name);
        }
        for (const auto& [name, value] : vars)
            ::setenv(name, value.c_str(), 1);
    }
    ~scoped_env() {
        for (const auto& [name, value] : saved_)
            if (value)
                ::setenv(name, value->c_str(), 1);
            else
                ::unsetenv(name);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

struct pull_result {
    std::error_code ec;
    oci::descriptor d;
    std::string last_error;
};

pull_result pull(const std::string& ref_text, reg::registry_options options,
                 const oci::image_store& images) {
    pull_result r;
    run([&](asio::io_context& io) -> asio::awaitable<void> {
        reg::registry_client client(io.get_executor(), options);
        auto ref = oci::parse_reference(ref_text);
        auto [ec, d] =
            co_await client.async_pull(ref, linux("amd64"), images, as_tuple(asio::use_awaitable));
        r = {ec, d, client.last_error()};
    });
    return r;
}

// A TLS registry holding cz/single:1 (pushed by skopeo), and the manifest pushed.
struct fixture {
    registry_server server{true};
    temp_dir dir{"cz-proxy"};
    oci::descriptor manifest;
    fixture() {
        auto store = oci::content_store::open(dir.path / "source");
        oci::image_store source(store);
        manifest = make_image(source, "amd64", dir.path);
        source.tag("single", manifest);
        push(server, dir.path / "source", "single");
    }
    std::string ref() const { return "registry.test:" + server.port() + "/cz/single:1"; }
    reg::registry_options options() const {
        reg::registry_options o;
        o.tls.ca_file = server.ca_file();
        o.attempts = 2;
        o.backoff = std::chrono::milliseconds(10);
        o.timeouts.connect = std::chrono::seconds(10);
        o.proxy = reg::proxy_from_environment();
        return o;
    }
};

// A plain-HTTP registry holding cz/single:1 (pushed by skopeo), reached by the name
// registry.test:PORT, marked insecure, through HTTP_PROXY.
struct http_fixture {
    std::string htpasswd;
    registry_server server{false, htpasswd};
    temp_dir dir{"cz-proxy-http"};
    oci::content_store source_store = oci::content_store::open(dir.path / "source");
    oci::image_store source{source_store};
    oci::descriptor manifest;
    oci::descriptor layer;
    explicit http_fixture(std::string users = {}) : htpasswd(std::move(users)) {
        manifest = make_image(source, "amd64", dir.path);
        source.tag("single", manifest);
        push(server, dir.path / "source", "single",
             htpasswd.empty() ? "" : "--dest-creds cz:secret");
        layer = oci::parse_manifest(source_store.read(manifest, 1 << 20)).layers.at(0);
    }
    std::string origin() const { return "http://registry.test:" + server.port(); }
    std::string ref(const std::string& repository = "single") const {
        return "registry.test:" + server.port() + "/cz/" + repository + ":1";
    }
    reg::registry_options options() const {
        reg::registry_options o;
        o.insecure.push_back("registry.test:" + server.port());
        o.attempts = 2;
        o.backoff = std::chrono::milliseconds(10);
        o.timeouts.connect = std::chrono::seconds(10);
        o.proxy = reg::proxy_from_environment();
        return o;
    }
};

// Whether `line` is a request line for `origin` in absolute-form: "GET http://host:port/v2/..."
bool absolute_form(const std::string& line, const std::string& origin) {
    auto space = line.find(' ');
    return space != std::string::npos &&
           line.compare(space + 1, origin.size() + 4, origin + "/v2/") == 0 &&
           line.ends_with(" HTTP/1.1");
}

std::size_t count_starting(const std::vector<proxied_request>& requests, const std::string& start) {
    return static_cast<std::size_t>(std::count_if(
        requests.begin(), requests.end(), [&](auto& r) { return r.line.rfind(start, 0) == 0; }));
}

void check_store_verifies(const oci::image_store& images) {
    std::error_code ec;
    auto report = images.verify(ec);
    REQUIRE(!ec);
    for (const auto& problem : report.problems)
        INFO(problem);
    CHECK(report.ok());
}

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("proxy: a pull through HTTPS_PROXY's CONNECT tunnel, TLS to the registry inside") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        fixture f;
        test_proxy proxy;
        auto url = proxy.url();
        scoped_env env({{"HTTPS_PROXY", "http://cz:p%40ss@" + url.substr(7)}});
        temp_dir dest_dir("cz-proxy-dest");
        auto dest_store = oci::content_store::open(dest_dir.path);
        oci::image_store dest(dest_store);
        auto r = pull(f.ref(), f.options(), dest);
        INFO(r.last_error);
        REQUIRE(!r.ec);
        CHECK(r.d.digest == f.manifest.digest);
        CHECK(dest.lookup(oci::parse_reference(f.ref()).str()).digest == f.manifest.digest);
        // Every connection went through the proxy, each a tunnel to the registry's name.
        auto connects = proxy.connects();
        REQUIRE(!connects.empty());
        for (const auto& c : connects)
            CHECK(c == "registry.test:" + f.server.port());
        for (const auto& a : proxy.authorizations())
            CHECK(a == "Basic Y3o6cEBzcw=="); // base64("cz:p@ss")

        // The certificate is checked inside the tunnel: without the test's CA, no pull, and
        // the error says it went through the proxy.
        auto untrusting = f.options();
        untrusting.tls.ca_file.clear();
        temp_dir other_dir("cz-proxy-other");
        auto other_store = oci::content_store::open(other_dir.path);
        oci::image_store other(other_store);
        auto refused = pull(f.ref(), untrusting, other);
        CHECK(refused.ec);
        CHECK(refused.last_error.find("through proxy " + url) != std::string::npos);
    }

    TEST_CASE("proxy: NO_PROXY naming the registry, and loopback registries, go direct") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        fixture f;
        test_proxy proxy;
        temp_dir dest_dir("cz-proxy-dest");
        auto dest_store = oci::content_store::open(dest_dir.path);
        oci::image_store dest(dest_store);
        for (const auto& no_proxy : std::vector<std::string>{"registry.test", ".test", "*",
                                                             "registry.test:" + f.server.port(),
                                                             "other.example, REGISTRY.TEST"}) {
            CAPTURE(no_proxy);
            scoped_env env({{"HTTPS_PROXY", proxy.url()}, {"no_proxy", no_proxy}});
            auto r = pull(f.ref(), f.options(), dest);
            // Direct, the name resolves nowhere: the pull fails without the proxy seeing it.
            CHECK(r.ec);
            CHECK(r.last_error.find("proxy") == std::string::npos);
            CHECK(proxy.connects().empty());
        }
        {
            // A NO_PROXY for another port does not apply: through the proxy, and it works.
            scoped_env env({{"HTTPS_PROXY", proxy.url()}, {"NO_PROXY", "registry.test:1"}});
            auto r = pull(f.ref(), f.options(), dest);
            INFO(r.last_error);
            CHECK(!r.ec);
            CHECK(!proxy.connects().empty());
        }

        // A plain-HTTP registry on 127.0.0.1, with both proxies set and no NO_PROXY: never
        // proxied, as Go never proxies loopback.
        registry_server plain;
        push(plain, f.dir.path / "source", "single");
        auto before = proxy.requests().size();
        scoped_env env({{"HTTPS_PROXY", proxy.url()}, {"HTTP_PROXY", proxy.url()}});
        temp_dir plain_dir("cz-proxy-plain");
        auto plain_store = oci::content_store::open(plain_dir.path);
        oci::image_store plain_dest(plain_store);
        auto r = pull(plain.host() + "/cz/single:1", f.options(), plain_dest);
        INFO(r.last_error);
        CHECK(!r.ec);
        CHECK(proxy.requests().size() == before);
    }

    TEST_CASE("proxy: a proxy that refuses the tunnel (407, 502) or is not there") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        fixture f;
        temp_dir dest_dir("cz-proxy-dest");
        auto dest_store = oci::content_store::open(dest_dir.path);
        oci::image_store dest(dest_store);
        for (int status : {407, 502}) {
            CAPTURE(status);
            test_proxy proxy(status);
            scoped_env env({{"https_proxy", proxy.url()}});
            auto r = pull(f.ref(), f.options(), dest);
            CHECK(r.ec == reg::errc::proxy_refused);
            INFO(r.last_error);
            CHECK(r.last_error.find("proxy " + proxy.url()) != std::string::npos);
            CHECK(r.last_error.find(std::to_string(status)) != std::string::npos);
            CHECK(r.last_error.find("registry.test:" + f.server.port()) != std::string::npos);
            CHECK(!proxy.connects().empty());
        }
        std::string gone;
        {
            test_proxy proxy;
            gone = proxy.url();
        } // closed: nothing listens there now
        scoped_env env({{"HTTPS_PROXY", gone}});
        auto r = pull(f.ref(), f.options(), dest);
        CHECK(r.ec);
        INFO(r.last_error);
        CHECK(r.last_error.find("proxy " + gone) != std::string::npos);

        // A proxy URL that cz cannot use is refused up front, by the setting's name.
        scoped_env bad({{"HTTPS_PROXY", "socks5://127.0.0.1:1080"}});
        CHECK_THROWS_WITH_AS(reg::registry_client(asio::system_executor(), f.options()),
                             doctest::Contains("HTTPS_PROXY"), std::system_error);
    }

    TEST_CASE("proxy: an insecure registry behind HTTP_PROXY: pull and push in absolute-form") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        http_fixture f;
        test_proxy proxy;
        // An HTTPS proxy that is not there: plain HTTP must not go to it.
        scoped_env env({{"HTTP_PROXY", "http://cz:p%40ss@" + proxy.url().substr(7)},
                        {"HTTPS_PROXY", "http://127.0.0.1:1"}});
        temp_dir dest_dir("cz-proxy-dest");
        auto dest_store = oci::content_store::open(dest_dir.path);
        oci::image_store dest(dest_store);
        auto r = pull(f.ref(), f.options(), dest);
        INFO(r.last_error);
        REQUIRE(!r.ec);
        CHECK(r.d.digest == f.manifest.digest);
        CHECK(dest.lookup(oci::parse_reference(f.ref()).str()).digest == f.manifest.digest);
        CHECK(dest_store.read(f.layer, 1 << 20) ==
              read_file(f.source_store.blob_path(f.layer.digest)));
        check_store_verifies(dest);
        // Every request went to the proxy in absolute-form, none as a tunnel, each with the
        // proxy's credentials.
        auto seen = proxy.requests();
        REQUIRE(!seen.empty());
        for (const auto& q : seen) {
            CAPTURE(q.line);
            CHECK(!q.is_connect());
            CHECK(absolute_form(q.line, f.origin()));
            CHECK(q.proxy_authorization == "Basic Y3o6cEBzcw=="); // base64("cz:p@ss")
        }
        CHECK(count_starting(seen, "GET " + f.origin() + "/v2/cz/single/manifests/1 ") == 1);
        CHECK(count_starting(seen, "GET " + f.origin() + "/v2/cz/single/blobs/" +
                                       f.layer.digest.str() + " ") == 1);

        // A push of another image (a layer in 64 KiB chunks: PATCH bodies through the proxy),
        // which skopeo then reads straight from the registry.
        auto up_store = oci::content_store::open(f.dir.path / "up");
        oci::image_store up(up_store);
        auto pushed = make_image(up, "arm64", f.dir.path);
        up.tag("app", pushed);
        auto options = f.options();
        options.upload_chunk_size = 64 << 10;
        std::error_code push_ec;
        reg::push_result result;
        std::string push_error;
        run([&](asio::io_context& io) -> asio::awaitable<void> {
            reg::registry_client client(io.get_executor(), options);
            auto [ec, res] =
                co_await reg::async_push(client, up, "app", oci::parse_reference(f.ref("pushed")),
                                         reg::push_options{}, as_tuple(asio::use_awaitable));
            push_ec = ec;
            result = res;
            push_error = client.last_error();
        });
        INFO(push_error);
        REQUIRE(!push_ec);
        CHECK(result.pushed.digest == pushed.digest);
        CHECK(result.uploaded == 2);
        seen = proxy.requests();
        for (const auto& q : seen) {
            CAPTURE(q.line);
            CHECK(absolute_form(q.line, f.origin()));
            CHECK(q.proxy_authorization == "Basic Y3o6cEBzcw==");
        }
        auto uploads = f.origin() + "/v2/cz/pushed/blobs/uploads/";
        CHECK(count_starting(seen, "POST " + uploads) >= 2);
        CHECK(count_starting(seen, "PATCH " + uploads) >= 3); // 200 KB of noise in 64 KiB
        CHECK(count_starting(seen, "PUT " + f.origin() + "/v2/cz/pushed/manifests/1 ") == 1);
        std::string raw;
        REQUIRE(sh("skopeo inspect --raw --tls-verify=false docker://" + f.server.host() +
                       "/cz/pushed:1 | sha256sum",
                   &raw) == 0);
        CHECK(raw.substr(0, 64) == pushed.digest.hex());
    }

    TEST_CASE("proxy: through HTTP_PROXY, a blob redirected to another host gets no credentials") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        auto htpasswd = htpasswd_line("cz", "secret");
        if (htpasswd.empty()) CZ_SKIP("python3 cannot make a bcrypt hash (no crypt module)");
        http_fixture f(htpasswd);
        // The other host (a CDN): an open registry with the same image, named cdn.test.
        registry_server cdn;
        push(cdn, f.dir.path / "source", "single");
        auto layer_get = "GET " + f.origin() + "/v2/cz/single/blobs/" + f.layer.digest.str() + " ";
        auto cdn_url =
            "http://cdn.test:" + cdn.port() + "/v2/cz/single/blobs/" + f.layer.digest.str();
        test_proxy proxy(0, [&](const std::string& line) -> std::string {
            if (line.rfind(layer_get, 0) != 0) return {};
            return "HTTP/1.1 307 Temporary Redirect\r\nLocation: " + cdn_url +
                   "\r\nContent-Length: 0\r\n\r\n";
        });
        scoped_env env({{"http_proxy", proxy.url()}});
        auto options = f.options();
        std::vector<std::string> asked;
        options.credentials = [&](std::string_view registry) -> std::optional<reg::credentials> {
            asked.emplace_back(registry);
            if (registry == "registry.test:" + f.server.port())
                return reg::credentials{"cz", "secret"};
            return std::nullopt;
        };
        temp_dir dest_dir("cz-proxy-dest");
        auto dest_store = oci::content_store::open(dest_dir.path);
        oci::image_store dest(dest_store);
        auto r = pull(f.ref(), options, dest);
        INFO(r.last_error);
        REQUIRE(!r.ec);
        CHECK(r.d.digest == f.manifest.digest);
        check_store_verifies(dest);
        CHECK(asked == std::vector<std::string>{"registry.test:" + f.server.port()});
        auto seen = proxy.requests();
        REQUIRE(count_starting(seen, layer_get) == 1);
        REQUIRE(count_starting(seen, "GET " + cdn_url + " ") == 1);
        for (const auto& q : seen) {
            CAPTURE(q.line);
            CHECK(q.proxy_authorization.empty());
            if (q.line.rfind(layer_get, 0) == 0) CHECK(q.authorization.starts_with("Basic "));
            if (q.line.find("cdn.test") != std::string::npos) CHECK(q.authorization.empty());
        }
    }

    TEST_CASE("proxy: HTTP_PROXY answering 407 or 502 to a forwarded request") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        http_fixture f;
        temp_dir dest_dir("cz-proxy-dest");
        auto dest_store = oci::content_store::open(dest_dir.path);
        oci::image_store dest(dest_store);
        for (int status : {407, 502}) {
            CAPTURE(status);
            test_proxy proxy(status);
            scoped_env env({{"HTTP_PROXY", proxy.url()}});
            auto r = pull(f.ref(), f.options(), dest);
            INFO(r.last_error);
            CHECK(r.ec == (status == 407 ? make_error_code(reg::errc::proxy_refused)
                                         : make_error_code(reg::errc::unexpected_status)));
            CHECK(r.last_error.find(std::to_string(status)) != std::string::npos);
            CHECK(r.last_error.find("GET " + f.origin() + "/v2/cz/single/manifests/1") !=
                  std::string::npos);
            if (status == 407) {
                CHECK(r.last_error.find("proxy " + proxy.url()) != std::string::npos);
                CHECK(r.last_error.find("wants credentials") != std::string::npos);
            }
            auto seen = proxy.requests();
            REQUIRE(!seen.empty());
            CHECK(absolute_form(seen[0].line, f.origin()));
        }
    }
}
