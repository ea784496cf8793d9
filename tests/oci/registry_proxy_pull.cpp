// registry_client through an HTTP proxy (proxy.hpp): a small CONNECT proxy here, on 127.0.0.1,
// in front of docker-registry with TLS. The registry is named "registry.test" (a name that never
// resolves, RFC 6761), which only the proxy knows how to reach: a pull that succeeds went through
// the tunnel, TLS checked against the registry's name and the test's CA inside it.
#include <cz/oci/registry/client.hpp>

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
#include <mutex>
#include <thread>

using namespace cz_test;
namespace oci = cz::oci;
namespace reg = cz::oci::registry;
using asio::experimental::as_tuple;

namespace {

// A CONNECT proxy: tunnels to registry.test:PORT (as 127.0.0.1:PORT), or answers every CONNECT
// with `refuse` (407, 502) when that is set. Records each CONNECT's target and its
// Proxy-Authorization. Blocking sockets, a thread per connection, as fault_proxy.hpp.
class connect_proxy {
    using tcp = asio::ip::tcp;

public:
    explicit connect_proxy(int refuse = 0)
        : refuse_(refuse), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~connect_proxy() {
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
    connect_proxy(const connect_proxy&) = delete;
    connect_proxy& operator=(const connect_proxy&) = delete;

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    std::vector<std::string> connects() const {
        std::lock_guard lock(mutex_);
        return connects_;
    }
    std::vector<std::string> authorizations() const {
        std::lock_guard lock(mutex_);
        return authorizations_;
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

    void serve(tcp::socket& client) {
        std::error_code ec;
        asio::streambuf in;
        auto n = asio::read_until(client, in, "\r\n\r\n", ec);
        if (ec) return;
        std::string head(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + n);
        in.consume(n);
        auto line_end = head.find("\r\n");
        auto line = head.substr(0, line_end);
        std::string authorization;
        for (auto pos = line_end + 2; pos < head.size();) {
            auto end = head.find("\r\n", pos);
            auto field = head.substr(pos, end - pos);
            if (field.rfind("Proxy-Authorization: ", 0) == 0)
                authorization = field.substr(std::strlen("Proxy-Authorization: "));
            pos = end + 2;
        }
        // "CONNECT registry.test:5000 HTTP/1.1"
        auto target = line.substr(8, line.rfind(' ') - 8);
        {
            std::lock_guard lock(mutex_);
            connects_.push_back(line.rfind("CONNECT ", 0) == 0 ? target : line);
            authorizations_.push_back(authorization);
        }
        auto answer = [&](const std::string& status) {
            asio::write(client,
                        asio::buffer("HTTP/1.1 " + status +
                                     "\r\nProxy-Authenticate: Basic realm=\"cz-test\"\r\n"
                                     "Content-Length: 0\r\n\r\n"),
                        ec);
        };
        auto colon = target.rfind(':');
        if (line.rfind("CONNECT ", 0) != 0 || colon == std::string::npos)
            return answer("405 Method Not Allowed");
        if (refuse_ == 407) return answer("407 Proxy Authentication Required");
        if (refuse_ != 0) return answer(std::to_string(refuse_) + " Refused");
        if (target.substr(0, colon) != "registry.test") return answer("502 Bad Gateway");
        tcp::socket upstream(io_);
        upstream.connect({asio::ip::make_address("127.0.0.1"),
                          static_cast<std::uint16_t>(std::stoi(target.substr(colon + 1)))},
                         ec);
        if (ec) return answer("502 Bad Gateway");
        {
            std::lock_guard lock(mutex_);
            open_.push_back(upstream.native_handle());
        }
        asio::write(client,
                    asio::buffer(std::string("HTTP/1.1 200 Connection established\r\n\r\n")), ec);
        if (in.size() > 0) asio::write(upstream, in.data(), ec); // what came after the head
        std::thread back([&] { pump(upstream, client); });
        pump(client, upstream);
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
    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::vector<int> open_;
    std::vector<std::thread> threads_;
    std::vector<std::string> connects_;
    std::vector<std::string> authorizations_;
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

} // namespace

TEST_SUITE("oci registry") {

    TEST_CASE("proxy: a pull through HTTPS_PROXY's CONNECT tunnel, TLS to the registry inside") {
        if (!have("docker-registry")) CZ_SKIP("docker-registry is not installed");
        if (!have("skopeo")) CZ_SKIP("skopeo is not installed");
        fixture f;
        connect_proxy proxy;
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
        connect_proxy proxy;
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
        auto before = proxy.connects().size();
        scoped_env env({{"HTTPS_PROXY", proxy.url()}, {"HTTP_PROXY", proxy.url()}});
        temp_dir plain_dir("cz-proxy-plain");
        auto plain_store = oci::content_store::open(plain_dir.path);
        oci::image_store plain_dest(plain_store);
        auto r = pull(plain.host() + "/cz/single:1", f.options(), plain_dest);
        INFO(r.last_error);
        CHECK(!r.ec);
        CHECK(proxy.connects().size() == before);

        // An insecure registry by name goes through HTTP_PROXY's tunnel in plain HTTP.
        auto options = f.options();
        options.insecure.push_back("registry.test:" + plain.port());
        temp_dir insecure_dir("cz-proxy-insecure");
        auto insecure_store = oci::content_store::open(insecure_dir.path);
        oci::image_store insecure_dest(insecure_store);
        r = pull("registry.test:" + plain.port() + "/cz/single:1", options, insecure_dest);
        INFO(r.last_error);
        CHECK(!r.ec);
        CHECK(r.d.digest == f.manifest.digest);
        auto connects = proxy.connects();
        REQUIRE(connects.size() > before);
        CHECK(connects.back() == "registry.test:" + plain.port());
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
            connect_proxy proxy(status);
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
            connect_proxy proxy;
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
}
