# Runs `PROBE MODE` (a program built with ThreadSanitizer) and passes only when ThreadSanitizer's verdict is
# the expected one: with EXPECT=race, a data-race report naming KERNEL; with EXPECT=none, a clean exit.
# Usage: cmake -DPROBE=path/to/race_probe -DMODE=warp-without-syncwarp -DEXPECT=race -DKERNEL=warp_neighbour_kernel
#        -P expect_race.cmake
execute_process(COMMAND "${PROBE}" "${MODE}" RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE errors)
if(EXPECT STREQUAL "race")
  if(NOT errors MATCHES "WARNING: ThreadSanitizer: data race" OR NOT errors MATCHES "${KERNEL}" OR result EQUAL 0)
    message(FATAL_ERROR "race_probe ${MODE}: expected a data race reported in ${KERNEL}, got result '${result}', "
                        "output '${output}', errors '${errors}'")
  endif()
elseif(NOT result EQUAL 0 OR errors MATCHES "ThreadSanitizer")
  message(FATAL_ERROR "race_probe ${MODE}: expected a clean run, got result '${result}', output '${output}', "
                      "errors '${errors}'")
endif()
