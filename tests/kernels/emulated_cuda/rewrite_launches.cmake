# Rewrites a kernel source (.cu) into C++ for the host emulation of CUDA (see device_emulation.hpp):
#   kernel<<<grid, block, shared, stream>>>(args)  ->  kernel | launch_config_of(launch_site{__FILE__, __LINE__},
#                                                      grid, block, shared, stream) | kernel_args(args)
#   extern __shared__ T name[];                     ->  T* name = dynamic_shared<T>();
#   __shared__ T name[N];                            ->  static thread_local T glm4_shared_name[2][N], name the
#                                                      block's copy of the two; plus a fresh_shared_memory
#   __launch_bounds__(N) kernel(...) {               ->  the same, its body starting with expect_within_launch_bound(N);
# and refuses __CUDA_ARCH__, which has no meaning on the host.
# Usage: cmake -DINPUT=x.cu -DOUTPUT=x.cpp -P rewrite_launches.cmake
cmake_policy(VERSION 3.25)  # a script run by -P starts with every policy unset
file(READ "${INPUT}" source)
string(REPLACE "<<<" " | ::glm4::emulated_cuda::launch_config_of(::glm4::emulated_cuda::launch_site{__FILE__, __LINE__}, "
       source "${source}")
string(REGEX REPLACE ">>>[ \t\r\n]*\\(" ") | ::glm4::emulated_cuda::kernel_args(" source "${source}")
string(REGEX REPLACE "extern __shared__ ([A-Za-z_][A-Za-z_0-9: ]*) ([A-Za-z_][A-Za-z_0-9]*)\\[\\];"
       "\\1* \\2 = ::glm4::emulated_cuda::dynamic_shared<\\1>();" source "${source}")
# A block's static shared memory: per host thread (one block runs on it at a time), two copies that blocks
# alternate between (block_parity(): racecheck orders a block after the one before last, not the last),
# refilled with NaN bytes by the first thread of each block to reach the declaration, as a GPU's holds no
# defined values.
string(REGEX REPLACE "__shared__ ([^;]+) ([A-Za-z_][A-Za-z_0-9]*)(\\[[^];]*\\]);"
       "static thread_local \\1 glm4_shared_\\2[2]\\3; auto& \\2 = glm4_shared_\\2[::glm4::emulated_cuda::block_parity()]; const ::glm4::emulated_cuda::fresh_shared_memory glm4_fresh_\\2(&\\2, sizeof \\2);"
       source "${source}")
string(REGEX REPLACE "__shared__ ([^;]+) ([A-Za-z_][A-Za-z_0-9]*);"
       "static thread_local \\1 glm4_shared_\\2[2]; auto& \\2 = glm4_shared_\\2[::glm4::emulated_cuda::block_parity()]; const ::glm4::emulated_cuda::fresh_shared_memory glm4_fresh_\\2(&\\2, sizeof \\2);"
       source "${source}")
# A kernel's __launch_bounds__(max_threads[, min_blocks]): its body starts by checking the block against
# max_threads, since a GPU refuses a launch of more threads than the bound (the macro itself expands to
# nothing). A declaration without a body gets no check; its definition does.
set(bounded "")
string(FIND "${source}" "__launch_bounds__(" at)
while(NOT at EQUAL -1)
  math(EXPR first "${at} + 18")
  string(LENGTH "${source}" length)
  set(depth 1)
  set(position ${first})
  set(first_argument_end -1)
  while(depth GREATER 0)
    if(position GREATER_EQUAL length)
      message(FATAL_ERROR "rewrite_launches: ${INPUT} has a __launch_bounds__( without its closing parenthesis")
    endif()
    string(SUBSTRING "${source}" ${position} 1 character)
    if(character STREQUAL "(")
      math(EXPR depth "${depth} + 1")
    elseif(character STREQUAL ")")
      math(EXPR depth "${depth} - 1")
    elseif(character STREQUAL "," AND depth EQUAL 1 AND first_argument_end EQUAL -1)
      set(first_argument_end ${position})
    endif()
    math(EXPR position "${position} + 1")
  endwhile()
  if(first_argument_end EQUAL -1)
    math(EXPR first_argument_end "${position} - 1")
  endif()
  math(EXPR bound_length "${first_argument_end} - ${first}")
  string(SUBSTRING "${source}" ${first} ${bound_length} bound)
  string(SUBSTRING "${source}" 0 ${position} before)
  string(SUBSTRING "${source}" ${position} -1 source)
  if(NOT source MATCHES "^[ \t\r\n]*[A-Za-z_][A-Za-z_0-9]*[ \t\r\n]*\\(")
    message(FATAL_ERROR "rewrite_launches: ${INPUT} has a __launch_bounds__(${bound}) that no kernel's name and "
                        "parameters follow (one in a comment?)")
  endif()
  string(FIND "${source}" "{" body)
  string(FIND "${source}" ";" semicolon)
  if(body EQUAL -1 OR (NOT semicolon EQUAL -1 AND semicolon LESS body))
    string(APPEND bounded "${before}")
  else()
    math(EXPR body "${body} + 1")
    string(SUBSTRING "${source}" 0 ${body} signature_end)
    string(SUBSTRING "${source}" ${body} -1 source)
    string(APPEND bounded "${before}${signature_end} ::glm4::emulated_cuda::expect_within_launch_bound(${bound});")
  endif()
  string(FIND "${source}" "__launch_bounds__(" at)
endwhile()
set(source "${bounded}${source}")
if(source MATCHES "<<<|>>>|__shared__|__CUDA_ARCH__")
  message(FATAL_ERROR "rewrite_launches: ${INPUT} has a launch, shared declaration or __CUDA_ARCH__ this script does not handle")
endif()
file(WRITE "${OUTPUT}.new" "#line 1 \"${INPUT}\"\n${source}")
# Unchanged output keeps its timestamp, so an edit elsewhere does not recompile every kernel.
file(COPY_FILE "${OUTPUT}.new" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.new")
