// http_session: routing, and the life of one generation request from submit to its last byte.
#include <boost/asio/post.hpp>

#include <caf/send.hpp>

#include <chrono>
#include <sstream>

#include "actors/messages.hpp"
#include "http/http_session.hpp"

namespace glm4::http {
namespace {

namespace bhttp = beast::http;

double seconds_of(std::chrono::steady_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

double now_seconds() { return seconds_of(std::chrono::steady_clock::now()); }

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Hands the scheduler's calls to the session's strand. It keeps the session alive until the
// request has ended (the scheduler drops the sink then), so an aborted request's last events
// still reach the metrics.
class session_sink : public actors::request_sink {
 public:
  session_sink(std::shared_ptr<http_session> session, std::uint64_t id) : session_(std::move(session)), id_(id) {}

  void on_rejected(actors::rejection reason) override {
    post([reason = std::move(reason)](http_session& s, std::uint64_t id) { s.on_rejected(id, reason); });
  }
  void on_accepted() override {
    post([](http_session& s, std::uint64_t id) { s.on_accepted(id); });
  }
  void on_scheduled(std::chrono::steady_clock::time_point step_start) override {
    post([step_start](http_session& s, std::uint64_t id) { s.on_scheduled(id, step_start); });
  }
  void on_events(std::vector<engine::request_output> events) override {
    post([events = std::move(events)](http_session& s, std::uint64_t id) mutable { s.on_events(id, std::move(events)); });
  }

 private:
  template <class F>
  void post(F f) {
    net::post(session_->executor(), [session = session_, id = id_, f = std::move(f)]() mutable { f(*session, id); });
  }

  std::shared_ptr<http_session> session_;
  std::uint64_t id_;
};

bool is_path(std::string_view path, std::initializer_list<std::string_view> names) {
  for (auto name : names)
    if (path == name) return true;
  return false;
}

}  // namespace

void http_session::route(const request_type& request) {
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool keep_alive = request.keep_alive();
  const bool is_get = request.method() == bhttp::verb::get;
  const bool is_post = request.method() == bhttp::verb::post;

  if (path_requires_key(path)) {
    const auto header = request.find(bhttp::field::authorization);
    const auto authorization = header == request.end() ? std::nullopt : std::optional<std::string_view>(header->value());
    if (!context_.keys.authorizes(authorization)) return send(error_response(unauthorized()), keep_alive);
  }

  const bool is_get_route = is_path(path, {"/health", "/metrics", "/v1/models"});
  const bool is_post_route = is_path(path, {"/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"});
  if (!is_get_route && !is_post_route)
    return send(error_response(not_found("no route " + std::string(path))), keep_alive);
  if ((is_get_route && !is_get) || (is_post_route && !is_post))
    return send(error_response(api_error{405, std::string(path) + " takes " + (is_get_route ? "GET" : "POST"),
                                         "invalid_request_error", std::nullopt, "method_not_allowed"}),
                keep_alive);

  if (path == "/health") return send(health_response(context_.board.read()), keep_alive);
  if (path == "/metrics") return send(metrics_response(context_.board.read(), context_.metrics, context_.registry), keep_alive);
  if (path == "/v1/models")
    return send(models_response(context_.limits.served_models, context_.created, context_.max_model_len.load()), keep_alive);

  if (!is_json_content_type(request[bhttp::field::content_type]))
    return send(error_response(api_error{415, "send the body as Content-Type: application/json",
                                         "invalid_request_error", std::nullopt, "unsupported_media_type"}),
                keep_alive);
  if (path == "/tokenize")
    return send(tokenize_response(request.body(), context_.limits, context_.tokenizer, context_.max_model_len.load()), keep_alive);
  if (path == "/detokenize") return send(detokenize_response(request.body(), context_.limits, context_.tokenizer), keep_alive);
  start_generation(request, path == "/v1/chat/completions" ? api_kind::chat : api_kind::completion);
}

void http_session::start_generation(const request_type& request, api_kind kind) {
  const bool keep_alive = request.keep_alive();
  if (!context_.is_serving())
    return send(error_response(api_error{503, "the model is still loading", "server_error", std::nullopt, "loading"}),
                keep_alive);
  auto parsed = kind == api_kind::chat ? parse_chat_request(request.body(), context_.limits)
                                       : parse_completion_request(request.body(), context_.limits);
  if (const auto* error = std::get_if<api_error>(&parsed)) return send(error_response(*error), keep_alive);
  openai_request& openai = std::get<openai_request>(parsed);
  std::vector<token_id> prompt;
  try {
    prompt = prompt_token_ids(openai, context_.tokenizer);
  } catch (const api_exception& error) {
    return send(error_response(error.error()), keep_alive);
  } catch (const std::exception& error) {
    return send(error_response(invalid_request(std::string("cannot build the prompt: ") + error.what(),
                                               kind == api_kind::chat ? "messages" : "prompt")),
                keep_alive);
  }

  // The engine refuses these too; here the error can name the field to change.
  const auto num_prompt = static_cast<std::int64_t>(prompt.size());
  const std::int64_t max_model_len = context_.max_model_len.load();
  if (num_prompt >= max_model_len)
    return send(error_response(invalid_request("the prompt has " + std::to_string(num_prompt) +
                                                   " tokens; this model's context is " +
                                                   std::to_string(max_model_len) + " tokens",
                                               kind == api_kind::chat ? "messages" : "prompt")),
                keep_alive);
  if (openai.params.max_tokens && num_prompt + *openai.params.max_tokens > max_model_len)
    return send(error_response(invalid_request(
                    "max_tokens " + std::to_string(*openai.params.max_tokens) + " plus the prompt's " +
                        std::to_string(num_prompt) + " tokens exceeds this model's context of " +
                        std::to_string(max_model_len) + " tokens",
                    "max_tokens")),
                keep_alive);

  generation g;
  g.id = context_.next_request_id.fetch_add(1, std::memory_order_relaxed);
  g.is_stream = openai.stream;
  g.keep_alive = keep_alive;
  g.num_prompt_tokens = static_cast<std::int64_t>(prompt.size());
  const std::string model_name =
      openai.model.value_or(context_.limits.served_models.empty() ? "glm-4" : context_.limits.served_models.front());
  auto response = make_response_context(openai, response_id(kind, g.id), unix_seconds(), model_name, &context_.tokenizer);
  if (g.is_stream)
    g.encoder.emplace(std::move(response));
  else
    g.collector.emplace(std::move(response));
  g.timer.emplace(context_.metrics, now_seconds());
  const std::uint64_t id = g.id;
  generation_.emplace(std::move(g));
  caf::anon_send(context_.scheduler, actors::submit_atom::value,
                 actors::submission{id, std::move(prompt), openai.params, std::make_shared<session_sink>(shared_from_this(), id)});
  schedule_request_deadline();
  do_read();  // pending while the request runs: EOF there is a disconnect
}

void http_session::on_rejected(std::uint64_t id, const actors::rejection& reason) {
  if (!generation_ || generation_->id != id) return;
  const bool keep_alive = generation_->keep_alive;
  generation_.reset();
  switch (reason.why) {
    case actors::rejection::kind::invalid:
      return send(error_response(invalid_request(reason.message)), keep_alive);
    case actors::rejection::kind::overloaded:
      return send(error_response(overloaded(reason.message)), keep_alive,
                  std::to_string(context_.options.retry_after.count()));
    case actors::rejection::kind::unavailable:
      return send(error_response(api_error{503, reason.message, "server_error", std::nullopt, "unavailable"}), keep_alive);
  }
}

void http_session::on_accepted(std::uint64_t id) {
  if (!generation_ || generation_->id != id) return;
  if (!generation_->is_stream) return;
  enqueue(write_item::sse_header(generation_->keep_alive));
  if (std::string start = generation_->encoder->start(); !start.empty())
    enqueue(write_item::chunk(std::move(start)));
  schedule_keep_alive();
}

void http_session::on_scheduled(std::uint64_t id, std::chrono::steady_clock::time_point step_start) {
  if (generation_ && generation_->id == id) generation_->timer->on_scheduled(seconds_of(step_start));
}

void http_session::on_events(std::uint64_t id, std::vector<engine::request_output> events) {
  if (!generation_ || generation_->id != id) return;
  generation& g = *generation_;
  std::int64_t num_tokens = 0;
  for (auto& event : events) {
    num_tokens += static_cast<std::int64_t>(event.tokens.size());
    if (g.is_timed_out && event.finish == engine::finish_reason::abort) {
      event.finish = engine::finish_reason::error;
      std::ostringstream limit;
      limit << static_cast<double>(context_.options.request_timeout->count()) / 1000.0;
      event.message = "the request ran past the server's request_timeout_s (" + limit.str() + " s)";
    }
    if (event.finish && g.final_reason != engine::finish_reason::error) g.final_reason = *event.finish;
  }
  const double now = now_seconds();
  if (num_tokens > 0) g.timer->on_tokens(now, num_tokens);
  std::string chunk;  // the step's SSE events, one write
  for (const auto& event : events) {
    if (g.is_stream)
      chunk += g.encoder->add(event);
    else
      g.collector->add(event);
  }
  const bool is_done = g.is_stream ? g.encoder->done() : g.collector->finished();
  // Counted before the client can see the end, so /metrics read after a reply includes it.
  if (is_done)
    g.timer->on_finished(now, g.final_reason.value_or(engine::finish_reason::abort), g.num_prompt_tokens);
  if (!chunk.empty()) {
    g.wrote_since_tick = true;
    enqueue(write_item::chunk(std::move(chunk)));  // after an overflow ended the stream: a no-op
  }
  if (is_done) finish_generation();
}

void http_session::finish_generation() {
  generation& g = *generation_;
  keep_alive_timer_.cancel();
  request_deadline_.cancel();
  const bool keep_alive = g.keep_alive;
  if (g.is_stream) {
    enqueue(write_item::last_chunk(keep_alive));
  } else if (auto error = g.collector->error()) {
    send(error_response(*error), keep_alive);
  } else {
    send(simple_response{200, "application/json", g.collector->body()}, keep_alive);
  }
  generation_.reset();
}

// The client is gone or too slow: the scheduler frees the request's blocks and its final events
// still arrive here (for the metrics) though nothing is written any more.
void http_session::abort_generation() {
  if (!generation_ || generation_->is_abort_sent) return;
  generation_->is_abort_sent = true;
  caf::anon_send(context_.scheduler, actors::abort_atom::value, engine::request_id{generation_->id});
}

// With request_timeout set, a generation still running when it expires is aborted (its blocks are
// freed); its final events then end the reply with an error naming the limit.
void http_session::schedule_request_deadline() {
  if (!context_.options.request_timeout || !generation_) return;
  request_deadline_.expires_after(*context_.options.request_timeout);
  request_deadline_.async_wait([self = shared_from_this(), id = generation_->id](beast::error_code ec) {
    if (ec || self->is_closed_ || !self->generation_ || self->generation_->id != id) return;
    self->generation_->is_timed_out = true;
    self->abort_generation();
  });
}

void http_session::schedule_keep_alive() {
  keep_alive_timer_.expires_after(context_.options.keep_alive_interval);
  keep_alive_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->is_closed_ || !self->generation_ || !self->generation_->is_stream) return;
    if (!self->generation_->wrote_since_tick)
      self->enqueue(write_item::chunk(std::string(sse_keep_alive)));
    self->generation_->wrote_since_tick = false;
    self->schedule_keep_alive();
  });
}

}  // namespace glm4::http
