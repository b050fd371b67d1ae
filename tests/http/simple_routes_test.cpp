// The routes answered without the scheduler: health, metrics gauges, content types.
#include <catch2/catch.hpp>

#include "http/simple_routes.hpp"

namespace glm4::http {

TEST_CASE("health is 200 when ready and 503 with the reason otherwise", "[simple_routes]") {
  actors::engine_status status;
  status.is_ready = false;
  status.not_ready_reason = "loading";
  const auto loading = health_response(status);
  CHECK(loading.status == 503);
  CHECK_THAT(loading.body, Catch::Contains("\"reason\":\"loading\""));
  status.is_ready = true;
  const auto ready = health_response(status);
  CHECK(ready.status == 200);
  CHECK(ready.body == R"({"status":"ok"})");
}

TEST_CASE("metrics take the gauges from the scheduler's status", "[simple_routes]") {
  metrics_registry registry;
  server_metrics metrics(registry);
  actors::engine_status status;
  status.num_running = 3;
  status.num_waiting = 5;
  status.kv_cache_usage = 0.25;
  const auto response = metrics_response(status, metrics, registry);
  CHECK(response.status == 200);
  CHECK_THAT(response.content_type, Catch::StartsWith("text/plain; version=0.0.4"));
  CHECK_THAT(response.body, Catch::Contains("\nglm4_requests_running 3\n"));
  CHECK_THAT(response.body, Catch::Contains("\nglm4_requests_waiting 5\n"));
  CHECK_THAT(response.body, Catch::Contains("\nglm4_kv_cache_usage_ratio 0.25\n"));
}

TEST_CASE("a JSON body may omit its content type but not name another", "[simple_routes]") {
  CHECK(is_json_content_type(""));
  CHECK(is_json_content_type("application/json"));
  CHECK(is_json_content_type("Application/JSON; charset=utf-8"));
  CHECK_FALSE(is_json_content_type("application/x-www-form-urlencoded"));
  CHECK_FALSE(is_json_content_type("text/plain"));
  CHECK_FALSE(is_json_content_type("application/jsonp"));
}

}  // namespace glm4::http
