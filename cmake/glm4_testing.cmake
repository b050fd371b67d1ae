# glm4_add_test(NAME name SOURCES a.cpp ... LIBS lib ... [LABELS slow ...])
# One Catch2 executable per area; every TEST_CASE becomes a ctest test.
add_library(glm4_catch_main STATIC ${PROJECT_SOURCE_DIR}/tests/catch_main.cpp)
target_link_libraries(glm4_catch_main PUBLIC Catch2::Catch2)

set(GLM4_TEST_DATA_DIR "${PROJECT_SOURCE_DIR}/tests/data")

function(glm4_add_test)
  cmake_parse_arguments(arg "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${arg_NAME} ${arg_SOURCES})
  glm4_target_defaults(${arg_NAME})
  target_link_libraries(${arg_NAME} PRIVATE glm4_catch_main ${arg_LIBS})
  target_compile_definitions(${arg_NAME} PRIVATE
    GLM4_TEST_DATA_DIR="${GLM4_TEST_DATA_DIR}"
    GLM4_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(labels ${arg_LABELS})
  if(NOT labels)
    set(labels unit)
  endif()
  catch_discover_tests(${arg_NAME} PROPERTIES LABELS "${labels}")
endfunction()
