// http_session: reading, the write queue and closing. Routing and generation are in
// http_session_routes.cpp.
#include "http/http_session.hpp"

#include <boost/asio/dispatch.hpp>

namespace glm4::http {

namespace bhttp = beast::http;

http_session::http_session(tcp::socket&& socket, server_context& context)
    : stream_(std::move(socket)), context_(context), idle_deadline_(stream_.get_executor()),
      keep_alive_timer_(stream_.get_executor()), request_deadline_(stream_.get_executor()) {
  context_.num_connections.fetch_add(1, std::memory_order_relaxed);
}

http_session::~http_session() { context_.num_connections.fetch_sub(1, std::memory_order_relaxed); }

void http_session::run(bool is_over_limit) {
  net::dispatch(stream_.get_executor(), [self = shared_from_this(), is_over_limit] {
    if (!is_over_limit) return self->do_read();
    self->send(error_response(api_error{503, "too many connections; retry later", "server_error", std::nullopt,
                                        "too_many_connections"}),
               /*keep_alive=*/false);
  });
}

// ---- reading ---------------------------------------------------------------------------------

void http_session::do_read() {
  if (is_reading_ || is_closed_) return;
  parser_.emplace();
  parser_->body_limit(context_.options.max_body_bytes);
  parser_->header_limit(context_.options.max_header_bytes);
  is_reading_ = true;
  stream_.expires_never();  // reads are bounded by idle_deadline_ instead, so they can wait out a generation
  if (!generation_) arm_idle_deadline();
  bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

// A request must arrive whole within read_timeout of the connection going idle.
void http_session::arm_idle_deadline() {
  idle_deadline_.expires_after(context_.options.read_timeout);
  idle_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec && self->is_reading_ && !self->generation_) self->close();
  });
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  is_reading_ = false;
  idle_deadline_.cancel();
  if (is_closed_) return;
  if (ec) {
    // While a generation runs, any end of the read side means the client is gone.
    if (generation_) {
      abort_generation();
      return close();
    }
    if (ec == bhttp::error::body_limit)
      return send(error_response(api_error{413,
                                           "request body exceeds " + std::to_string(context_.options.max_body_bytes) +
                                               " bytes",
                                           "invalid_request_error", std::nullopt, "request_too_large"}),
                  false);
    if (ec == bhttp::error::header_limit)
      return send(error_response(api_error{431, "request headers too large", "invalid_request_error", std::nullopt,
                                           "header_too_large"}),
                  false);
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() && ec != bhttp::error::end_of_stream &&
        ec != bhttp::error::partial_message)
      return send(error_response(invalid_request("malformed HTTP request: " + ec.message(), std::nullopt, "bad_request")),
                  false);
    return close();
  }
  request_type request = parser_->release();
  if (generation_) {
    pipelined_ = std::move(request);  // answered once the running reply is written
    return;
  }
  route(request);
}

// ---- writing ---------------------------------------------------------------------------------

void http_session::send(simple_response response, bool keep_alive, std::optional<std::string> retry_after) {
  enqueue(write_item{write_item::kind::response, std::move(response.body), response.status,
                     std::move(response.content_type), keep_alive, std::move(retry_after), 0});
}

void http_session::enqueue(write_item item) {
  if (is_closed_) return;
  item.num_bytes = item.data.size();
  queued_bytes_ += item.num_bytes;
  if (generation_ && generation_->is_stream && queued_bytes_ > context_.options.max_queued_write_bytes) {
    // The client reads slower than we generate: end this stream only.
    abort_generation();
    return close();
  }
  queue_.push_back(std::move(item));
  do_write();
}

void http_session::do_write() {
  if (is_writing_ || queue_.empty() || is_closed_) return;
  is_writing_ = true;
  stream_.expires_after(context_.options.write_timeout);  // the write timer only: a read may be pending
  write_item& item = queue_.front();
  auto on_done = [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); };
  switch (item.what) {
    case write_item::kind::sse_header: {
      auto response = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::ok, 11);
      response->set(bhttp::field::server, "glm4-actor");
      response->set(bhttp::field::content_type, sse_content_type);
      response->set(bhttp::field::cache_control, "no-cache");
      response->keep_alive(item.keep_alive);
      response->chunked(true);
      auto serializer = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*response);
      in_flight_ = std::make_shared<std::pair<decltype(response), decltype(serializer)>>(response, serializer);
      bhttp::async_write_header(stream_, *serializer, std::move(on_done));
      return;
    }
    case write_item::kind::chunk:
      net::async_write(stream_, bhttp::make_chunk(net::buffer(item.data)), std::move(on_done));
      return;
    case write_item::kind::last_chunk:
      net::async_write(stream_, bhttp::make_chunk_last(), std::move(on_done));
      return;
    case write_item::kind::response: {
      auto response = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(item.status), 11);
      response->set(bhttp::field::server, "glm4-actor");
      response->set(bhttp::field::content_type, item.content_type);
      if (item.retry_after) response->set(bhttp::field::retry_after, *item.retry_after);
      if (item.status == 401) response->set(bhttp::field::www_authenticate, "Bearer");
      response->keep_alive(item.keep_alive);
      response->body() = std::move(item.data);
      response->prepare_payload();
      in_flight_ = response;
      bhttp::async_write(stream_, *response, std::move(on_done));
      return;
    }
  }
}

void http_session::on_write(beast::error_code ec) {
  is_writing_ = false;
  in_flight_.reset();
  if (is_closed_) return;
  if (ec) {
    abort_generation();
    return close();
  }
  const write_item done = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= done.num_bytes;
  if (done.what == write_item::kind::response || done.what == write_item::kind::last_chunk)
    after_response(done.keep_alive);
  do_write();
}

// One reply is out: the next request, pipelined or still to come.
void http_session::after_response(bool keep_alive) {
  if (!keep_alive) return close();
  if (pipelined_) {
    request_type next = std::move(*pipelined_);
    pipelined_.reset();
    return route(next);
  }
  if (is_reading_)
    arm_idle_deadline();
  else
    do_read();
}

void http_session::close() {
  if (is_closed_) return;
  is_closed_ = true;
  idle_deadline_.cancel();
  keep_alive_timer_.cancel();
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

}  // namespace glm4::http
