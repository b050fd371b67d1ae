#include "model/tokenizer/incremental_decoder.hpp"

#include "model/tokenizer/utf8.hpp"

namespace glm4::model {

std::string incremental_decoder::push(token_id id) {
  tokenizer_->append_piece(id, pending_, skip_special_);
  const std::size_t complete = utf8::complete_prefix_length(pending_);
  std::string text = utf8::replace_invalid(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return text;
}

std::string incremental_decoder::flush() {
  std::string text = utf8::replace_invalid(pending_);
  pending_.clear();
  return text;
}

}  // namespace glm4::model
