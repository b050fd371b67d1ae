// Accepting connections; each gets its own strand and an http_session.
#include "http/http_server.hpp"

#include <boost/asio/strand.hpp>

#include <stdexcept>

#include "http/http_session.hpp"

namespace glm4::http {

http_server::http_server(server_context& context)
    : context_(context), io_(static_cast<int>(std::max<std::size_t>(context.options.num_threads, 1))), acceptor_(io_) {
  const std::string where = context.options.host + ":" + std::to_string(context.options.port);
  beast::error_code ec;
  const auto address = net::ip::make_address(context.options.host, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": '" + context.options.host + "' is not an IP address");
  const tcp::endpoint endpoint(address, context.options.port);
  auto check = [&](const char* what) {
    if (ec) throw std::runtime_error("cannot listen on " + where + ": " + what + ": " + ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  check("open");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  check("set reuse_address");
  acceptor_.bind(endpoint, ec);
  check("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  check("listen");
  port_ = acceptor_.local_endpoint().port();
}

http_server::~http_server() { stop(); }

void http_server::start() {
  do_accept();
  const std::size_t num_threads = std::max<std::size_t>(context_.options.num_threads, 1);
  for (std::size_t i = 0; i < num_threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void http_server::stop() {
  if (threads_.empty()) return;
  net::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  io_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

void http_server::do_accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      const bool is_over_limit =
          context_.num_connections.load(std::memory_order_relaxed) >= context_.options.max_connections;
      std::make_shared<http_session>(std::move(socket), context_)->run(is_over_limit);
    }
    do_accept();
  });
}

}  // namespace glm4::http
