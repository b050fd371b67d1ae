// The text of a CAF error for people: the message a handler put in it (make_error(code, text)),
// or CAF's rendering when it carries none.
#pragma once

#include <string>

#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>

namespace glm4::actors {

inline std::string error_message(caf::actor_system& system, const caf::error& error) {
  const caf::message& context = error.context();
  if (context.match_elements<std::string>()) return context.get_as<std::string>(0);
  return system.render(error);
}

}  // namespace glm4::actors
