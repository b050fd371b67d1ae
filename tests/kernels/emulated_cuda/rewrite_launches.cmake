# Rewrites a kernel source (.cu) into C++ for the host emulation of CUDA (see device_emulation.hpp):
#   kernel<<<grid, block, shared, stream>>>(args)  ->  kernel | launch_config_of(launch_site{__FILE__, __LINE__},
#                                                      grid, block, shared, stream) | kernel_args(args)
#   extern __shared__ T name[];                     ->  T* name = dynamic_shared<T>();
#   __shared__ T name[N];                            ->  static thread_local T name[N]; plus a fresh_shared_memory
# and refuses __CUDA_ARCH__, which has no meaning on the host.
# Usage: cmake -DINPUT=x.cu -DOUTPUT=x.cpp -P rewrite_launches.cmake
file(READ "${INPUT}" source)
string(REPLACE "<<<" " | ::glm4::emulated_cuda::launch_config_of(::glm4::emulated_cuda::launch_site{__FILE__, __LINE__}, "
       source "${source}")
string(REGEX REPLACE ">>>[ \t\r\n]*\\(" ") | ::glm4::emulated_cuda::kernel_args(" source "${source}")
string(REGEX REPLACE "extern __shared__ ([A-Za-z_][A-Za-z_0-9: ]*) ([A-Za-z_][A-Za-z_0-9]*)\\[\\];"
       "\\1* \\2 = ::glm4::emulated_cuda::dynamic_shared<\\1>();" source "${source}")
# A block's static shared memory: per host thread (one block runs on it at a time), refilled with NaN
# bytes by the first thread of each block to reach the declaration, as a GPU's holds no defined values.
string(REGEX REPLACE "__shared__ ([^;]+) ([A-Za-z_][A-Za-z_0-9]*)(\\[[^];]*\\]);"
       "static thread_local \\1 \\2\\3; const ::glm4::emulated_cuda::fresh_shared_memory glm4_fresh_\\2(&\\2, sizeof \\2);"
       source "${source}")
string(REGEX REPLACE "__shared__ ([^;]+) ([A-Za-z_][A-Za-z_0-9]*);"
       "static thread_local \\1 \\2; const ::glm4::emulated_cuda::fresh_shared_memory glm4_fresh_\\2(&\\2, sizeof \\2);"
       source "${source}")
if(source MATCHES "<<<|>>>|__shared__|__CUDA_ARCH__")
  message(FATAL_ERROR "rewrite_launches: ${INPUT} has a launch, shared declaration or __CUDA_ARCH__ this script does not handle")
endif()
file(WRITE "${OUTPUT}.new" "#line 1 \"${INPUT}\"\n${source}")
# Unchanged output keeps its timestamp, so an edit elsewhere does not recompile every kernel.
file(COPY_FILE "${OUTPUT}.new" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.new")
