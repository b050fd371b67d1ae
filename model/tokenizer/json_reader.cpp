#include "model/tokenizer/json_reader.hpp"

#include <boost/json/stream_parser.hpp>

#include <fstream>
#include <sstream>

#include "model/tokenizer/tokenizer_error.hpp"

namespace glm4::model {

tokenizer_json_reader::tokenizer_json_reader(const std::filesystem::path& path) : name_(path.string()) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw tokenizer_error(name_ + ": cannot open the file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  boost::json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t consumed = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // The offset where the parser stopped gives the line and column of the error.
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < consumed && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw tokenizer_error(name_ + ":" + std::to_string(line) + ":" + std::to_string(column) +
                          ": invalid JSON: " + ec.message());
  }
  root_ = parser.release();
}

void tokenizer_json_reader::fail(std::string_view field, std::string_view what) const {
  throw tokenizer_error(name_ + ": " + std::string(field) + ": " + std::string(what));
}

const boost::json::object& tokenizer_json_reader::object(const boost::json::value& v,
                                                         std::string_view field) const {
  if (!v.is_object()) fail(field, "expected an object");
  return v.get_object();
}

const boost::json::array& tokenizer_json_reader::array(const boost::json::value& v,
                                                       std::string_view field) const {
  if (!v.is_array()) fail(field, "expected an array");
  return v.get_array();
}

const boost::json::string& tokenizer_json_reader::string(const boost::json::value& v,
                                                         std::string_view field) const {
  if (!v.is_string()) fail(field, "expected a string");
  return v.get_string();
}

std::int64_t tokenizer_json_reader::integer(const boost::json::value& v, std::string_view field) const {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  fail(field, "expected an integer");
}

bool tokenizer_json_reader::boolean(const boost::json::value& v, std::string_view field) const {
  if (!v.is_bool()) fail(field, "expected true or false");
  return v.get_bool();
}

const boost::json::value* tokenizer_json_reader::member(const boost::json::object& o,
                                                        std::string_view key) const {
  const boost::json::value* v = o.if_contains(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

const boost::json::value& tokenizer_json_reader::required(const boost::json::object& o, std::string_view key,
                                                          std::string_view field) const {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) fail(field, "missing");
  return *v;
}

}  // namespace glm4::model
