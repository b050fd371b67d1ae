// The racecheck tests' main: the op tests under ThreadSanitizer, which makes them 4 to 13 times slower,
// so they run a third of the parity cases (GLM4_PARITY_CASE_STRIDE, unless set) and stop at the
// first race reported. Set here because ctest gives tests found by catch_discover_tests one variable only.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>

extern "C" const char* __tsan_default_options() { return "halt_on_error=1"; }

int main(int argc, char* argv[]) {
  setenv("GLM4_PARITY_CASE_STRIDE", "3", /*overwrite=*/0);
  return Catch::Session().run(argc, argv);
}
