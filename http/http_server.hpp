// The Beast server: an acceptor and the io_context threads every session runs on.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <thread>
#include <vector>

#include "http/server_context.hpp"

namespace glm4::http {

class http_server {
 public:
  /// Binds and listens at once; throws std::runtime_error naming the address when it cannot
  /// (port in use, no permission, bad host).
  explicit http_server(server_context& context);
  ~http_server();

  /// Accepts connections on context.options.num_threads threads.
  void start();
  /// Stops accepting, closes every connection and joins the threads.
  void stop();
  /// The bound port (the chosen one when options.port was 0).
  std::uint16_t port() const { return port_; }

 private:
  void do_accept();

  server_context& context_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace glm4::http
