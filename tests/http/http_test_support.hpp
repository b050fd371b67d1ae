// Shared by the http tests: the fixture tokenizer and variant unpacking.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <variant>

#include "http/openai_request.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace glm4::http::testing {

inline const model::tokenizer& fixture_tokenizer() {
  static const model::tokenizer t = model::tokenizer::load_tokenizer_json(
      std::filesystem::path(GLM4_TEST_DATA_DIR) / "tokenizer" / "tokenizer.json");
  return t;
}

template <class T>
const T& expect_ok(const api_result<T>& result) {
  if (const auto* error = std::get_if<api_error>(&result)) FAIL("unexpected error: " << error->message);
  return std::get<T>(result);
}

template <class T>
const api_error& expect_error(const api_result<T>& result) {
  REQUIRE(std::holds_alternative<api_error>(result));
  return std::get<api_error>(result);
}

}  // namespace glm4::http::testing
