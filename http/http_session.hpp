// One client connection: reads requests, routes them, writes replies and SSE streams. Everything
// runs on the connection's strand; the scheduler reaches it only through a sink that posts there.
//
//   READING --request--> simple route ----------------------> WRITING --keep-alive--> READING
//      |                 generation --submit--> (accepted) --> events ... --> WRITING
//      |                                  \--(rejected)--> 400 / 429 / 503
//      +--EOF / error / timeout--> CLOSED; a running generation is aborted at the scheduler
//
// While a generation runs the next read stays pending: EOF there means the client left.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "engine/request_output.hpp"
#include "http/openai_response.hpp"
#include "http/openai_stream.hpp"
#include "http/server_context.hpp"
#include "http/simple_routes.hpp"

namespace glm4::actors {
struct rejection;
}

namespace glm4::http {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(tcp::socket&& socket, server_context& context);
  ~http_session();

  /// Starts reading; `is_over_limit` answers 503 and closes instead.
  void run(bool is_over_limit);

  // The scheduler's side, each posted onto the strand by the request's sink.
  void on_rejected(std::uint64_t id, const actors::rejection& reason);
  void on_accepted(std::uint64_t id);
  void on_scheduled(std::uint64_t id, std::chrono::steady_clock::time_point step_start);
  void on_events(std::uint64_t id, std::vector<engine::request_output> events);

 private:
  using request_type = beast::http::request<beast::http::string_body>;

  // One generation request in flight (at most one per connection).
  struct generation {
    std::uint64_t id = 0;
    bool is_stream = false;
    bool keep_alive = true;
    std::optional<stream_encoder> encoder;          // stream
    std::optional<completion_accumulator> collector;  // not stream
    std::optional<request_timer> timer;
    std::optional<engine::finish_reason> final_reason;
    std::int64_t num_prompt_tokens = 0;
    bool wrote_since_tick = false;
    bool is_abort_sent = false;
    bool is_timed_out = false;  // aborted for request_timeout: its end is an error to the client
  };

  // What the write queue holds: the SSE header, a chunk, the last chunk, or a whole response.
  struct write_item {
    enum class kind { sse_header, chunk, last_chunk, response } what;
    std::string data;
    int status = 200;
    std::string content_type;
    bool keep_alive = true;
    std::optional<std::string> retry_after;
    std::size_t num_bytes = 0;  // of data when queued (the data moves into the message)

    static write_item sse_header(bool keep_alive) { return {kind::sse_header, {}, 200, {}, keep_alive, {}, 0}; }
    static write_item chunk(std::string data) { return {kind::chunk, std::move(data), 200, {}, true, {}, 0}; }
    static write_item last_chunk(bool keep_alive) { return {kind::last_chunk, {}, 200, {}, keep_alive, {}, 0}; }
  };

  // Reading.
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void arm_idle_deadline();

  // Routing (http_session_routes.cpp).
  void route(const request_type& request);
  void start_generation(const request_type& request, api_kind kind);
  void finish_generation();
  void abort_generation();
  void schedule_keep_alive();
  void schedule_request_deadline();

  // Writing.
  void send(simple_response response, bool keep_alive, std::optional<std::string> retry_after = std::nullopt);
  void enqueue(write_item item);
  void do_write();
  void on_write(beast::error_code ec);
  void after_response(bool keep_alive);
  void close();

 public:
  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  beast::tcp_stream stream_;
  server_context& context_;
  beast::flat_buffer buffer_;
  std::optional<beast::http::request_parser<beast::http::string_body>> parser_;
  bool is_reading_ = false;
  bool is_closed_ = false;
  std::optional<request_type> pipelined_;  // arrived while a generation ran
  net::steady_timer idle_deadline_;
  net::steady_timer keep_alive_timer_;
  net::steady_timer request_deadline_;

  std::optional<generation> generation_;

  std::deque<write_item> queue_;
  std::size_t queued_bytes_ = 0;
  bool is_writing_ = false;
  std::shared_ptr<void> in_flight_;  // the message or serializer being written
};

}  // namespace glm4::http
