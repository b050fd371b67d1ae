# Runs `PROBE MODE` and passes only when it printed "about to fault" and then died of a segmentation fault:
# the emulation must make the access a GPU faults on crash right there, not run on.
# Usage: cmake -DPROBE=path/to/fault_probe -DMODE=past-the-end -P expect_fault.cmake
execute_process(COMMAND "${PROBE}" "${MODE}" RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE errors)
if(NOT output MATCHES "about to fault" OR output MATCHES "no fault" OR NOT result MATCHES "Segmentation fault")
  message(FATAL_ERROR "fault_probe ${MODE}: expected a segmentation fault after \"about to fault\", got result "
                      "'${result}', output '${output}', errors '${errors}'")
endif()
